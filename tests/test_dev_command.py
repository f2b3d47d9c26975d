"""``journeys dev`` as a newcomer runs it: a scratch folder, its own journeys, the README's calls.

Each test starts ``journeys dev`` as a subprocess in a folder of its own, on free ports (other
tests run beside it), and stops it with SIGTERM: it must exit 0, with no traceback.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from journeys.devserver import free_port
from tests.helpers import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def readme_block(heading: str, language: str, starting: str) -> str:
    """The first ``language`` code block after ``heading`` in the README that starts so."""
    section = README[README.index(heading) :]
    found = re.search(rf"```{language}\n({re.escape(starting)}.*?)```", section, re.S)
    assert found, f"the README's {starting!r} example under {heading!r}"
    return found.group(1)


def readme_trigger() -> str:
    """The README's ``trigger(...)`` call, as an app copies it."""
    calls = readme_block("## Using it in an app", "python", "from journeys import")
    found = re.search(r"^handle = trigger\(.*?^\)$", calls, re.S | re.M)
    assert found, "the README's trigger call"
    return found.group(0)


APP = f'''\
"""The README's calls, from an app's own folder."""
import json
import sys

from journeys import cancel, status, trigger

command = sys.argv[1]
if command == "trigger":
{textwrap.indent(readme_trigger(), "    ")}
    print(handle.run_id)
elif command == "status":
    run = status(sys.argv[2])
    print(json.dumps({{"state": run.state, "step": run.current_step,
                      "timeline": [[e.step, e.outcome] for e in run.timeline],
                      "retrying": [m.detail for m in run.retrying]}}))
elif command == "cancel":
    print(cancel(sys.argv[2]).state)
'''


def readme_journey() -> str:
    """The onboarding journey exactly as the README shows it."""
    return readme_block("## The journey language", "yaml", "journey: onboarding")


def scratch_app(folder: Path, extra_config: str = "") -> dict[str, int]:
    """A new app folder: ``journeys/`` with the README's journey, ``journeys.toml``, app.py."""
    ports = {"port": free_port(), "ui_port": free_port(), "inbox_port": free_port()}
    (folder / "journeys" / "templates").mkdir(parents=True)
    (folder / "journeys" / "onboarding.yaml").write_text(readme_journey(), encoding="utf-8")
    # What the README shows, where it shows it; the rest from the repository's examples.
    (folder / "journeys" / "segments.yaml").write_text(
        readme_block("`journeys/segments.yaml`:", "yaml", "segments:"), encoding="utf-8"
    )
    (folder / "journeys" / "templates" / "welcome.yaml").write_text(
        readme_block("## Templates", "yaml", "engine: liquid"), encoding="utf-8"
    )
    for name in ("templates/pro_tips.yaml", "templates/crm_note.yaml"):
        (folder / "journeys" / name).write_text(
            (REPO / "journeys" / name).read_text(encoding="utf-8"), encoding="utf-8"
        )  # fmt: skip
    config = "[dev]\n" + "".join(f"{k} = {v}\n" for k, v in ports.items()) + extra_config
    (folder / "journeys.toml").write_text(config, encoding="utf-8")
    (folder / "app.py").write_text(APP, encoding="utf-8")
    return ports


def clean_env() -> dict[str, str]:
    """The environment without this suite's JOURNEYS_* settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith("JOURNEYS_")}


def wait_for(check: Callable[[], Any], what: str, timeout: float = 90) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached in {timeout}s (last: {value!r})")
        time.sleep(0.2)


class Dev:
    """``journeys dev`` running in a folder, its output in files."""

    def __init__(self, command: list[str], folder: Path) -> None:
        self.folder = folder
        self.out = folder / "dev.out"
        self.err = folder / "dev.err"
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.process = subprocess.Popen(
                [*command, "dev"],
                cwd=folder,
                env=clean_env(),
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )

    def output(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")

    def wait_ready(self) -> None:
        def ready() -> bool:
            assert self.process.poll() is None, f"journeys dev exited:\n{self.output()}"
            return "worker polling" in self.out.read_text(errors="replace")

        wait_for(ready, "journeys dev to start")

    def stop(self) -> str:
        """SIGTERM; it must exit 0 without a traceback. Returns everything it printed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"journeys dev did not stop on SIGTERM:\n{self.output()}"
            ) from None
        return self.output()


@pytest.fixture
def running() -> Iterator[list[Dev]]:
    """Every ``journeys dev`` a test started, stopped at its end whatever happens."""
    started: list[Dev] = []
    yield started
    for dev in started:
        if dev.process.poll() is None:
            dev.process.kill()
            dev.process.wait()


def run(command: list[str], folder: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=folder,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_a_newcomer_goes_from_an_empty_folder_to_a_message_in_the_inbox(
    tmp_path: Path, running: list[Dev]
) -> None:
    folder = tmp_path / "acme-app"
    ports = scratch_app(folder)
    # The README: a virtualenv of the app's own, journeys installed from this repository.
    venv = folder / ".venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    installed = run([str(venv / "bin" / "pip"), "install", "-q", "-e", str(REPO)], folder, 600)
    assert installed.returncode == 0, installed.stderr
    python, journeys = str(venv / "bin" / "python"), str(venv / "bin" / "journeys")

    dev = Dev([journeys], folder)
    running.append(dev)
    dev.wait_ready()
    started = dev.out.read_text()
    assert f"Temporal UI: http://localhost:{ports['ui_port']}" in started
    assert f"Inbox: http://127.0.0.1:{ports['inbox_port']}" in started
    assert "email    caught at smtp://127.0.0.1:" in started
    assert (folder / ".journeys" / "temporal.log").is_file()  # the folder came first

    triggered = run([python, "app.py", "trigger"], folder)
    assert triggered.returncode == 0, triggered.stderr
    run_id = triggered.stdout.strip()

    def inbox() -> list[dict[str, Any]]:
        listed = run([journeys, "inbox", "--json"], folder)
        return json.loads(listed.stdout) if listed.returncode == 0 else []

    [mail] = wait_for(inbox, "the welcome email in `journeys inbox`")
    assert mail["channel"] == "email" and mail["address"] == "ana@example.com"
    assert mail["content"]["subject"] == "Welcome to Acme, Ana!"
    assert "Welcome, Ana! Unsubscribe:" in mail["content"]["text"]
    assert (mail["journey"], mail["step"], mail["recipient"]) == ("onboarding", "welcome", "u42")
    assert run_id in mail["message_id"]
    shown = run([journeys, "inbox", str(mail["number"])], folder)
    assert "Subject: Welcome to Acme, Ana!" in shown.stdout

    page_url = f"http://127.0.0.1:{ports['inbox_port']}/"
    with urllib.request.urlopen(page_url, timeout=10) as response:
        page = response.read().decode()
    assert "Welcome to Acme, Ana!" in page and "Welcome, Ana! Unsubscribe:" in page

    def status() -> dict[str, Any]:
        shown = run([python, "app.py", "status", run_id], folder)
        assert shown.returncode == 0, shown.stderr
        return dict(json.loads(shown.stdout))

    assert wait_for(lambda: status()["step"] == "wait_1d", "the run to wait a day")
    assert status()["timeline"] == [["welcome", "sent"]]
    cancelled = run([python, "app.py", "cancel", run_id], folder)
    assert cancelled.stdout.strip() == "cancelled", cancelled.stderr

    output = dev.stop()
    assert dev.process.returncode == 0, output
    assert "Traceback" not in output


def test_without_a_mail_server_a_send_waits_for_its_retry_and_cancel_withdraws_it(
    tmp_path: Path, running: list[Dev]
) -> None:
    folder = tmp_path / "app"
    dead = free_port()  # nothing listens there
    scratch_app(folder, f'\n[email]\nhost = "127.0.0.1"\nport = {dead}\n')
    command = [sys.executable, "-m", "journeys"]
    dev = Dev(command, folder)
    running.append(dev)
    dev.wait_ready()
    assert "email    sent for real ([email] host and port set)" in dev.out.read_text()

    triggered = run([sys.executable, "app.py", "trigger"], folder)
    assert triggered.returncode == 0, triggered.stderr
    run_id = triggered.stdout.strip()

    def status() -> dict[str, Any]:
        shown = run([sys.executable, "app.py", "status", run_id], folder)
        assert shown.returncode == 0, shown.stderr
        return dict(json.loads(shown.stdout))

    waiting = wait_for(
        lambda: (s := status())["retrying"] and s["retrying"][0]["attempt"] >= 2 and s,
        "the welcome email to have failed twice",
    )
    assert waiting["state"] == "running" and waiting["step"] == "welcome"
    assert f"127.0.0.1:{dead}" in waiting["retrying"][0]["last_error"]
    shown = run([*command, "status", run_id], folder)
    assert "waiting for a retry after attempt" in shown.stdout, shown.stdout

    cancelled = run([sys.executable, "app.py", "cancel", run_id], folder, timeout=30)
    assert cancelled.stdout.strip() == "cancelled", cancelled.stderr
    after = status()
    assert after["timeline"] == [["welcome", "cancelled"]] and after["retrying"] == []
    logged = run([*command, "messages", "--run", run_id, "--json"], folder)
    [message] = json.loads(logged.stdout)
    assert (message["state"], message["reason"]) == ("skipped", "cancelled")

    output = dev.stop()
    assert dev.process.returncode == 0, output
    assert "Traceback" not in output
    attempts = [line for line in output.splitlines() if "will retry" in line]
    assert len(attempts) >= 2  # a line per failed attempt
    assert all(f"127.0.0.1:{dead}" in line for line in attempts)
