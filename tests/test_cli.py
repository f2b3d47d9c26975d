"""The journeys command, run as a user runs it: a separate process."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

from journeys.devserver import DevServer
from tests.helpers import REPO, Engine, copy_examples


def journeys(
    *args: str, env: dict[str, str] | None = None, cwd: Path = REPO, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "journeys", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_help_lists_every_command() -> None:
    result = journeys("--help")
    assert result.returncode == 0
    for command in (
        "validate",
        "graph",
        "trigger",
        "status",
        "cancel",
        "track",
        "worker",
        "dev",
        "inbox",
        "demo",
        "migrate",
    ):
        assert command in result.stdout


def test_validate_ok_on_the_examples() -> None:
    result = journeys("validate")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: ")
    assert "onboarding" in result.stdout


def test_validate_reports_problems_with_locations(tmp_path: Path) -> None:
    directory = copy_examples(tmp_path / "journeys")
    (directory / "broken.yaml").write_text("journey: broken\nsteps:\n  - wiat: 1d\n")
    result = journeys("validate", "--dir", str(directory), cwd=tmp_path)
    assert result.returncode == 1
    assert "journeys/broken.yaml:3:5: unknown step kind" in result.stderr
    assert "(did you mean 'wait'?)" in result.stderr
    assert "1 problem found" in result.stderr
    assert "problems" not in result.stderr


def test_graph_prints_mermaid() -> None:
    result = journeys("graph", "onboarding")
    assert result.returncode == 0
    assert result.stdout.startswith("flowchart TD")


def test_unknown_journey_is_a_clear_error() -> None:
    result = journeys("graph", "onbording")
    assert result.returncode == 1
    assert "unknown journey 'onbording': expected one of demo, onboarding" in result.stderr


def test_bad_configuration_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "journeys.toml").write_text('[email]\npassword = "hunter2"\n')
    result = journeys("validate", cwd=tmp_path)
    assert result.returncode == 1
    assert "set JOURNEYS_EMAIL_PASSWORD instead" in result.stderr


async def journeys_async(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the command in a thread, so the in-process worker keeps answering."""
    return await asyncio.to_thread(journeys, *args, env=env)


def engine_env(engine: Engine) -> dict[str, str]:
    """The environment that points the command at a test's engine."""
    return {
        "JOURNEYS_TEMPORAL_ADDRESS": engine.settings.temporal.address,
        "JOURNEYS_TEMPORAL_TASK_QUEUE": engine.settings.temporal.task_queue,
        "JOURNEYS_STORE_URL": engine.settings.store.url,
        "JOURNEYS_DIRECTORY": str(engine.directory),
    }


async def test_trigger_status_cancel_from_the_command_line(engine: Engine) -> None:
    env = engine_env(engine)
    started = await journeys_async("trigger", "onboarding", "--to", "cli-1", "cli-2", env=env)
    assert started.returncode == 0, started.stderr
    trigger_id = started.stdout.split()[1]
    assert trigger_id.startswith("trg_")
    run_id = started.stdout.splitlines()[1].split()[1]
    await engine.until_at(run_id, "wait_1d")
    shown = await journeys_async("status", run_id, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "state      running at wait_1d" in shown.stdout
    assert "welcome  send      skipped via email (no address)" in shown.stdout
    as_json = await journeys_async("status", trigger_id, "--json", env=env)
    assert '"running": 2' in as_json.stdout
    tracked = await journeys_async(
        "track", "cli-1", "subscription_started", "--data", '{"plan": "pro"}', env=env
    )
    assert "reached 1 running journey;" not in tracked.stdout
    assert tracked.stdout.strip().endswith("reached 1 running journey")
    cancelled = await journeys_async("cancel", trigger_id, env=env)
    assert cancelled.returncode == 0, cancelled.stderr
    assert "cancelled" in cancelled.stdout
    missing = await journeys_async("status", "no-such-run", env=env)
    assert missing.returncode == 1
    assert "unknown run or trigger 'no-such-run'" in missing.stderr


async def test_trigger_gives_profile_fields_on_the_command_line(engine: Engine) -> None:
    env = engine_env(engine)
    own = '{"id": "cli-j", "email": "j@example.com"}'  # its own field wins over --field
    started = await journeys_async(
        "trigger",
        "onboarding",
        "--to",
        "cli-f",
        "--to",  # repeated: both are recipients
        own,
        "--field",
        "email=f@example.com",
        "--field",
        "plan=pro",
        "--field",
        "seats:=3",
        env=env,
    )
    assert started.returncode == 0, started.stderr
    runs = {line.split()[0]: line.split()[1] for line in started.stdout.splitlines()[1:]}
    for recipient, address in (("cli-f", "f@example.com"), ("cli-j", "j@example.com")):
        await engine.until_at(runs[recipient], "wait_1d")
        shown = await journeys_async("status", runs[recipient], env=env)
        assert f"welcome  send      sent via email to {address}" in shown.stdout, shown.stdout
        person = await engine.client.person(recipient)
        assert person.attributes == {"email": address, "plan": "pro", "seats": 3}
    await journeys_async("cancel", started.stdout.split()[1], env=env)


async def test_a_cohort_trigger_from_a_file_with_a_progress_bar(
    engine: Engine, tmp_path: Path
) -> None:
    env = engine_env(engine)
    engine.write(
        "note",
        f"journey: note\nsteps:\n  - send: ping\n    channel: webhook\n"
        f"    url: {engine.hooks.url}/ping\n",
    )
    people = tmp_path / "people.jsonl"
    people.write_text("\n".join(['{"id": "f1", "plan": "pro"}', "f2", "", '{"id": "f3"}']) + "\n")
    done = await journeys_async(
        "trigger", "note", "--to-file", str(people), "--cohorts", "--wait", env=env
    )
    assert done.returncode == 0, done.stderr
    assert "3 recipients, started in cohorts" in done.stdout
    assert "3/3 done, 3 completed" in done.stdout.splitlines()[-1]
    trigger_id = done.stdout.split()[1]
    shown = await journeys_async("status", trigger_id, env=env)
    assert "ping" in shown.stdout and "cohort-1  completed" in shown.stdout
    one = await journeys_async("status", trigger_id, "--recipient", "f2", env=env)
    assert "recipient f2" in one.stdout and "ping" in one.stdout
    bad = tmp_path / "bad.jsonl"
    bad.write_text('f1\n{"id": "f2",\n')
    refused = await journeys_async("trigger", "note", "--to-file", str(bad), env=env)
    assert refused.returncode == 1
    assert f"{bad}:2: expected a JSON object or an id" in refused.stderr


def test_demo_runs_end_to_end() -> None:
    from journeys.demo import DEMO_PEOPLE
    from journeys.devserver import free_port

    result = journeys("demo", "--ui-port", str(free_port()), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "triggered journey 'demo' for 4 people" in out
    assert "done: {'completed': 4}" in out
    assert "emails caught: 4" in out
    assert "webhooks received: 3" in out
    assert "cleo  did app_activated" in out
    # The live progress follows every run to its end, step by step, by name.
    progress = [m.groups() for m in re.finditer(r"(?m)^  \[ *[\d.]+s\] (\S+) +(.*)$", out)]
    assert progress and not any(what == "→ running" for _, what in progress), out
    for person in DEMO_PEOPLE:
        mine = [what for who, what in progress if who == person["id"]]
        assert mine[-1] == "completed", mine
        steps = [m.split(":")[0] for m in mine if ":" in m]
        last = "pro_tips" if person["plan"] == "pro" else "crm_note"
        assert steps == ["welcome", "wait_2s", "activation", "plan_check", last], mine
    # Its server stops with it: no links to a UI that is gone, but how to keep it.
    assert "Temporal UI: http" not in out
    assert "`journeys demo --keep` keeps them up" in out


def test_dev_server_keeps_state_in_a_file(tmp_path: Path) -> None:
    db = tmp_path / "temporal.db"
    with DevServer(db_file=db):
        pass
    assert db.is_file() and db.stat().st_size > 0


def test_dev_server_makes_the_folders_of_its_state_and_log(tmp_path: Path) -> None:
    # `journeys dev` in a new folder once failed: the log was opened before .journeys/ existed.
    log = tmp_path / "logs" / "temporal.log"
    with DevServer(db_file=tmp_path / "state" / "temporal.db", log_file=log):
        pass
    assert log.is_file()


def _wait_for_port(port: int, process: subprocess.Popen[str], timeout: float = 60) -> None:
    import socket
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing listening on {port} after {timeout}s")


async def test_dev_runs_server_and_worker_and_keeps_state(tmp_path: Path) -> None:
    import signal

    from journeys.client import JourneysClient
    from journeys.config import Settings
    from journeys.devserver import free_port
    from tests.helpers import eventually

    port, ui_port = free_port(), free_port()
    env = {
        "JOURNEYS_DEV_PORT": str(port),
        "JOURNEYS_DEV_UI_PORT": str(ui_port),
        "JOURNEYS_DEV_DB_FILE": str(tmp_path / "temporal.db"),
        "JOURNEYS_STORE_URL": f"sqlite:///{tmp_path}/store.db",
        "JOURNEYS_TEMPORAL_TASK_QUEUE": "dev-test",
        "JOURNEYS_DEV_INBOX_PORT": str(free_port()),
        "JOURNEYS_DEV_INBOX_FILE": str(tmp_path / "inbox.db"),
    }
    settings = Settings.model_validate(
        {
            "temporal": {"address": f"127.0.0.1:{port}", "task_queue": "dev-test"},
            "store": {"url": f"sqlite:///{tmp_path}/store.db"},
        }
    )

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "journeys", "dev"],
            cwd=REPO,
            text=True,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def stop(process: subprocess.Popen[str]) -> str:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
        assert process.returncode == 0, output
        return output

    process = start()
    try:
        await asyncio.to_thread(_wait_for_port, ui_port, process)
        async with await JourneysClient.connect(settings) as client:
            handle = await client.trigger("onboarding", ["dev-user"])
            await eventually(
                lambda: client.status(handle.run_id),
                lambda s: getattr(s, "current_step", None) == "wait_1d",
                what="the run to reach wait_1d through the dev worker",
            )
    finally:
        output = await asyncio.to_thread(stop, process)
    assert f"Temporal UI: http://localhost:{ui_port}" in output

    process = start()  # the same state file: the run is still there, still waiting
    try:
        await asyncio.to_thread(_wait_for_port, port, process)
        async with await JourneysClient.connect(settings) as client:
            status = await eventually(
                lambda: client.status(handle.run_id),
                lambda s: getattr(s, "current_step", None) == "wait_1d",
                what="the run after a restart",
            )
            assert status.state == "running"  # type: ignore[union-attr]
            await client.cancel(handle.run_id)
    finally:
        await asyncio.to_thread(stop, process)


def test_preferences_preview_and_suppress_need_only_the_store(tmp_path: Path) -> None:
    env = {
        "JOURNEYS_STORE_URL": f"sqlite:///{tmp_path}/store.db",
        "JOURNEYS_TEMPORAL_ADDRESS": "127.0.0.1:1",
    }  # nothing listens there: not needed
    changed = journeys(
        "preferences", "u9", "--opt-out", "sms", "--topic", "news=off", "--unsubscribe", env=env
    )
    assert changed.returncode == 0, changed.stderr
    assert "unsubscribed  yes" in changed.stdout
    assert "opted out of  sms" in changed.stdout
    assert "topics        news=off" in changed.stdout
    shown = journeys("preferences", "u9", "--opt-in", "sms", "--resubscribe", env=env)
    assert "unsubscribed  no" in shown.stdout and "opted out of  none" in shown.stdout
    bad = journeys("preferences", "u9", "--topic", "news", env=env)
    assert bad.returncode != 0 and "NAME=on|off" in bad.stderr
    preview = journeys(
        "preview",
        "welcome",
        "--channel",
        "email",
        "--profile",
        '{"first_name": "Zoe", "plan": "pro"}',
        env=env,
    )
    assert preview.returncode == 0, preview.stderr
    assert "--- subject\nWelcome to Acme, Zoe!" in preview.stdout
    assert "Your pro account is ready." in preview.stdout
    missing = journeys("preview", "welcome", "--channel", "webhook", env=env)
    assert missing.returncode == 1
    assert "has no webhook variant" in missing.stderr
    nobody = journeys("preview", "welcome", "--channel", "email", "--recipient", "ghost", env=env)
    assert "no profile for recipient 'ghost'" in nobody.stderr
    suppressed = journeys("suppress", "a@b.example", "--address", "--reason", "bounced", env=env)
    assert "suppressed address a@b.example: bounced" in suppressed.stdout
    lifted = journeys("suppress", "a@b.example", "--address", "--lift", env=env)
    assert "lifted" in lifted.stdout
    assert journeys("messages", "--recipient", "u9", env=env).stdout.strip() == "no messages"
    forged = journeys(
        "unsubscribe", "abc.def", env={**env, "JOURNEYS_PREFERENCES_SIGNING_SECRET": "s"}
    )
    assert forged.returncode == 1 and "invalid unsubscribe token" in forged.stderr


async def test_messages_of_a_recipient_from_the_command_line(engine: Engine) -> None:
    handle = await engine.client.trigger(
        "demo", [{"id": "m1", "email": "m1@example.com"}], data={"webhook_url": engine.hooks.url}
    )
    await engine.until_at(handle.run_id, "activation")
    env = {"JOURNEYS_STORE_URL": engine.settings.store.url}
    listed = await journeys_async("messages", "--recipient", "m1", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "sent     email    welcome" in listed.stdout
    # The email's id (on a loaded machine the run may have gone on to the webhook).
    [welcome] = [m for m in await engine.client.messages(recipient="m1") if m.channel == "email"]
    assert welcome.id in listed.stdout
    message_id = welcome.id
    one = await journeys_async("message", message_id, "--json", env=env)
    assert '"state": "sent"' in one.stdout and '"address": "m1@example.com"' in one.stdout
    await engine.client.cancel(handle.run_id)


def test_a_dev_server_does_not_outlive_its_parent(tmp_path: Path) -> None:
    import signal
    import time

    script = (
        "from journeys.devserver import DevServer\n"
        "import sys, time\n"
        "s = DevServer(); s.start(); print(s._process.pid, flush=True); time.sleep(600)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=REPO,
        text=True,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(child, signal.SIGKILL)
    raise AssertionError("the dev server outlived the process that started it")
