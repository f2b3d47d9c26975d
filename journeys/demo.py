"""``journeys demo``: everything embedded, one journey run for a few people, then a report."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from journeys.client import JourneysClient
from journeys.config import Settings
from journeys.devserver import DevServer, free_port
from journeys.models import RunStatus, TriggerStatus
from journeys.process import run_until_stopped
from journeys.report import outcome, plural, run_text, ui_link
from journeys.sinks import MailCatcher, WebhookSink
from workers.worker import running_worker

__all__ = ["DEMO_PEOPLE", "DEMO_UI_PORT", "run_demo"]

DEMO_DIRECTORY = Path(__file__).parent
DEMO_PEOPLE = [
    {"id": "ana", "email": "ana@example.com", "first_name": "Ana", "plan": "pro"},
    {"id": "ben", "email": "ben@example.com", "first_name": "Ben", "plan": "free"},
    {"id": "cleo", "email": "cleo@example.com", "first_name": "Cleo", "plan": "free"},
    {"id": "dev", "first_name": "Dev", "plan": "free"},
]
DEMO_UI_PORT = 8233
"""The Temporal UI's port when it is free (else any free port)."""
_DEADLINE = 120.0
"""Seconds the demo's runs have to finish."""

Say = Callable[[str], object]


def _port(preferred: int) -> int:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            return free_port()
    return preferred


def run_demo(*, keep: bool = False, ui_port: int | None = None, out: Say = print) -> int:
    """Run the demo; returns a process exit code.

    The first SIGINT or SIGTERM stops it cleanly (exit 0), with or without ``keep``.

    Args:
        keep: keep the server and its UI running after the report, until a signal.
        ui_port: the Temporal UI's port (default: :data:`DEMO_UI_PORT` if free).
        out: where lines go (``print`` by default).

    """
    with (
        tempfile.TemporaryDirectory(prefix="journeys-demo-") as folder,
        contextlib.ExitStack() as up,
    ):
        server = DevServer(
            ui_port=ui_port or _port(DEMO_UI_PORT), log_file=Path(folder) / "temporal.log"
        )
        until = "" if keep else " while the demo runs"
        out(f"starting the Temporal dev server (UI on {server.ui_url}{until}) …")
        up.callback(server.stop)
        server.start()
        mail, hooks = MailCatcher().start(), WebhookSink().start()
        up.callback(mail.stop)
        up.callback(hooks.stop)
        settings = Settings.model_validate(
            {
                "temporal": {"address": server.address, "task_queue": "journeys-demo"},
                "store": {"url": f"sqlite:///{folder}/store.db"},
                "email": {"host": "127.0.0.1", "port": mail.port},
                "webhook": {"allow_private": ["127.0.0.0/8"]},
            }
        )
        return run_until_stopped(lambda: _demo(settings, server, mail, hooks, keep, out))


class _Progress:
    """Each run's steps as they happen, read from its timeline, and how it ended."""

    def __init__(self, out: Say) -> None:
        self.out = out
        self.began = time.monotonic()
        self.entries: dict[str, int] = {}
        self.at: dict[str, str | None] = {}
        self.ended: set[str] = set()

    def elapsed(self) -> float:
        return time.monotonic() - self.began

    def say(self, who: str, text: str) -> None:
        self.out(f"  [{self.elapsed():5.1f}s] {who:<5} {text}")

    def show(self, status: RunStatus | TriggerStatus) -> None:
        runs = status.runs if isinstance(status, TriggerStatus) else [status]
        for run in runs:
            who = run.recipient_id
            shown = self.entries.get(who, 0)
            for entry in run.timeline[shown:]:
                self.say(who, f"{entry.step}: {outcome(entry)}")
            self.entries[who] = max(shown, len(run.timeline))
            if run.done:
                if who not in self.ended:
                    self.ended.add(who)
                    why = f" ({run.exit_reason})" if run.exit_reason else ""
                    self.say(who, f"{run.state}{why}")
            elif run.current_step and self.at.get(who) != run.current_step:
                self.say(who, f"→ {run.current_step}")
            self.at[who] = run.current_step


async def _demo(
    settings: Settings,
    server: DevServer,
    mail: MailCatcher,
    hooks: WebhookSink,
    keep: bool,
    out: Say,
) -> int:
    async with (
        running_worker(settings),
        await JourneysClient.connect(settings, directory=DEMO_DIRECTORY) as client,
    ):
        out(f"worker running; mail catcher on :{mail.port}, webhook sink on :{hooks.port}")
        handle = await client.trigger("demo", DEMO_PEOPLE, data={"webhook_url": hooks.url})
        people = plural(len(handle.runs), "person", "people")
        out(f"triggered journey 'demo' for {people}: {handle.trigger_id}")
        progress = _Progress(out)
        tracked = False
        while True:
            status = await client.status(handle.trigger_id)
            progress.show(status)
            if status.done:
                break
            if not tracked and progress.elapsed() > 1.0:
                tracked = True
                await client.track("cleo", "app_activated", {"source": "demo"})
                progress.say("cleo", "did app_activated (track)")
            if progress.elapsed() > _DEADLINE:
                out(f"the demo did not finish in {_DEADLINE:.0f} s")
                return 1
            await asyncio.sleep(0.25)
        assert isinstance(status, TriggerStatus)
        out("")
        for run in status.runs:
            out(run_text(run))
            if keep:
                out(f"  Temporal UI: {ui_link(server.ui_url or '', 'default', run)}")
            out("")
        out(
            f"emails caught: {len(mail.messages)}; "
            + "; ".join(f"{m['To']}: {m['Subject']}" for m in mail.messages)
        )
        out(
            f"webhooks received: {len(hooks.requests)}; "
            + "; ".join(f"{r.path} {r.body}" for r in hooks.requests)
        )
        failed = [r for r in status.runs if r.state not in ("completed", "exited")]
        out(f"done: {status.counts}")
        if not keep:
            out(
                "the demo's Temporal server stops now, and its UI with it: "
                "`journeys demo --keep` keeps them up to browse these runs"
            )
            return 1 if failed else 0
        out(f"the Temporal UI stays up at {server.ui_url}; Ctrl-C or SIGTERM to stop")
        await asyncio.Event().wait()
        raise AssertionError("unreachable")  # pragma: no cover
