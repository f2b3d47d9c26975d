"""Long-running commands stop cleanly on the first SIGTERM or Ctrl-C (SIGINT): exit 0."""

from __future__ import annotations

import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from journeys.devserver import DevServer, free_port
from tests.helpers import REPO

STOPPED_IN = 60.0
"""Seconds a stopped command has to exit: a bound on a hang, not a timing assertion."""


class Running:
    """A command running in a process of its own, its output collected as it comes."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            args,
            cwd=REPO,
            text=True,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.stdout)),
            threading.Thread(target=self._read, args=(self.process.stderr, self.stderr)),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: object, into: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            with self._changed:
                into.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def output(self) -> str:
        return "".join(self.stdout) + "".join(self.stderr)

    def wait_until(self, ready: Callable[[], bool], what: str, timeout: float = 120) -> None:
        """Block until ``ready()``; fail if the process ends first or after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not ready():
                if self.process.poll() is not None and not any(r.is_alive() for r in self._readers):
                    raise AssertionError(f"exited before {what}:\n{self.output()}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"not {what} after {timeout}s:\n{self.output()}")
                self._changed.wait(0.5)

    def printed(self, text: str) -> bool:
        return text in self.output()

    def stop(self, sig: signal.Signals) -> int:
        """Send ``sig`` once; the exit code, once the process has ended (bounded)."""
        self.process.send_signal(sig)
        return self.ended()

    def ended(self) -> int:
        """The exit code, once the process has ended (bounded)."""
        try:
            code = self.process.wait(timeout=STOPPED_IN)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        for reader in self._readers:
            reader.join(timeout=STOPPED_IN)
        return code


def _listening(port: int) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    return ready


def _assert_clean(run: Running, code: int) -> None:
    assert code == 0, run.output()
    err = "".join(run.stderr)
    assert "Traceback" not in err and "Fatal Python error" not in err, err
    assert "alembic" not in run.output()


@pytest.fixture
def worker_env(temporal_server: DevServer, tmp_path: Path) -> dict[str, str]:
    return {
        "JOURNEYS_TEMPORAL_ADDRESS": temporal_server.address,
        "JOURNEYS_TEMPORAL_TASK_QUEUE": f"signals-{tmp_path.name}",
        "JOURNEYS_STORE_URL": f"sqlite:///{tmp_path}/store.db",
    }


WORKERS = [
    ("journeys worker", [sys.executable, "-m", "journeys", "worker"], signal.SIGTERM),
    ("journeys worker", [sys.executable, "-m", "journeys", "worker"], signal.SIGINT),
    ("python -m workers", [sys.executable, "-m", "workers"], signal.SIGTERM),
]


@pytest.mark.parametrize(
    ("name", "args", "sig"), WORKERS, ids=[f"{w[0]} {w[2].name}" for w in WORKERS]
)
def test_a_worker_stops_on_the_first_signal(
    name: str, args: list[str], sig: signal.Signals, worker_env: dict[str, str]
) -> None:
    run = Running(args, worker_env)
    run.wait_until(lambda: run.printed("worker polling task queue"), "polling")
    _assert_clean(run, run.stop(sig))
    assert run.printed("worker stopped")


class _HeldHook:
    """A webhook target that answers only when released: an activity kept in flight."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()
        held = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                held.arrived.set()
                held.release.wait(STOPPED_IN)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def held_hook() -> Iterator[_HeldHook]:
    hook = _HeldHook()
    yield hook
    hook.close()


async def test_a_stopping_worker_lets_its_running_send_finish(
    worker_env: dict[str, str], held_hook: _HeldHook, tmp_path: Path
) -> None:
    import asyncio

    from journeys.client import JourneysClient
    from journeys.config import Settings
    from tests.helpers import copy_examples, eventually

    directory = copy_examples(tmp_path / "journeys")
    (directory / "held.yaml").write_text(
        "journey: held\nsteps:\n  - send: ping\n    channel: webhook\n"
        f"    url: {held_hook.url}/ping\n"
    )
    env = {**worker_env, "JOURNEYS_WEBHOOK_ALLOW_PRIVATE": "127.0.0.0/8"}
    settings = Settings.model_validate(
        {
            "temporal": {
                "address": env["JOURNEYS_TEMPORAL_ADDRESS"],
                "task_queue": env["JOURNEYS_TEMPORAL_TASK_QUEUE"],
            },
            "store": {"url": env["JOURNEYS_STORE_URL"]},
        }
    )
    run = Running([sys.executable, "-m", "journeys", "worker"], env)
    await asyncio.to_thread(
        run.wait_until, lambda: run.printed("worker polling task queue"), "polling"
    )
    async with await JourneysClient.connect(settings, directory=directory) as client:
        handle = await client.trigger("held", ["in-flight"])
        assert await asyncio.to_thread(held_hook.arrived.wait, STOPPED_IN)
        run.process.send_signal(signal.SIGTERM)  # the send is in flight, held by the hook
        await asyncio.to_thread(
            run.wait_until, lambda: run.printed("stopping the worker"), "stopping"
        )
        run.process.send_signal(signal.SIGTERM)  # a second one is waited out
        await asyncio.to_thread(
            run.wait_until, lambda: run.printed("SIGTERM again: still stopping"), "told"
        )
        assert run.process.poll() is None
        held_hook.release.set()
        _assert_clean(run, await asyncio.to_thread(run.ended))
        # The worker is gone; the send it finished is in the run's history for the next one.
        second = Running([sys.executable, "-m", "journeys", "worker"], env)
        try:
            # Stopped only once it runs: a signal before Python has set its handlers
            # takes the default action (see the README's Stopping).
            await asyncio.to_thread(
                second.wait_until, lambda: second.printed("worker polling task queue"), "up"
            )
            status = await eventually(
                lambda: client.status(handle.run_id),
                lambda s: s.done,
                timeout=STOPPED_IN,
                what="the run to end on the next worker",
            )
        finally:
            _assert_clean(second, await asyncio.to_thread(second.stop, signal.SIGTERM))
    [ping] = status.timeline  # type: ignore[union-attr]
    assert (ping.step, ping.outcome) == ("ping", "sent")


SERVE = [signal.SIGTERM, signal.SIGINT]


@pytest.mark.parametrize("sig", SERVE, ids=[s.name for s in SERVE])
def test_serve_stops_on_the_first_signal(
    sig: signal.Signals, worker_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    env = {**worker_env, "JOURNEYS_SERVER_TOKENS": "a-token"}
    run = Running([sys.executable, "-m", "journeys", "serve", "--port", str(port)], env)
    run.wait_until(_listening(port), f"listening on {port}")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as answer:
        assert answer.status == 200
    _assert_clean(run, run.stop(sig))


DEMO = [signal.SIGTERM, signal.SIGINT]


@pytest.mark.parametrize("sig", DEMO, ids=[s.name for s in DEMO])
def test_demo_keep_links_work_and_it_stops_on_the_first_signal(sig: signal.Signals) -> None:
    ui_port = free_port()
    run = Running(
        [sys.executable, "-m", "journeys", "demo", "--keep", "--ui-port", str(ui_port)], {}
    )
    run.wait_until(lambda: run.printed("Ctrl-C or SIGTERM to stop"), "kept up", timeout=300)
    links = [
        line.split("Temporal UI: ")[1].strip() for line in run.stdout if "Temporal UI: " in line
    ]
    assert len(links) == 4
    assert all(link.startswith(f"http://localhost:{ui_port}/namespaces/default/") for link in links)
    with urllib.request.urlopen(links[0].replace("localhost", "127.0.0.1"), timeout=30) as page:
        assert page.status == 200
    _assert_clean(run, run.stop(sig))
    assert not _listening(ui_port)()


ONE_SHOT = [signal.SIGTERM, signal.SIGINT]


@pytest.mark.parametrize("sig", ONE_SHOT, ids=[s.name for s in ONE_SHOT])
async def test_a_one_shot_command_interrupted_exits_130_quietly(
    sig: signal.Signals, worker_env: dict[str, str], temporal: Client
) -> None:
    """No worker polls this task queue: ``--wait`` waits for ever."""
    import asyncio

    env = {**worker_env, "JOURNEYS_DIRECTORY": str(REPO / "journeys")}
    recipient = f"one-shot-{sig.name}"
    run = Running(
        [sys.executable, "-m", "journeys", "trigger", "onboarding", "--to", recipient, "--wait"],
        env,
    )
    await asyncio.to_thread(run.wait_until, lambda: run.printed(" done"), "waiting")
    assert await asyncio.to_thread(run.stop, sig) == 130, run.output()
    assert "".join(run.stderr) == ""
    await temporal.get_workflow_handle(f"onboarding/{recipient}").terminate("test over")
