"""``journeys demo``: everything embedded, one journey run for a few people, then a report."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from pathlib import Path

from journeys.client import JourneysClient
from journeys.config import Settings
from journeys.devserver import DevServer, free_port
from journeys.models import RunStatus, TriggerStatus
from journeys.report import run_text, ui_link
from journeys.sinks import MailCatcher, WebhookSink
from workers.worker import running_worker

__all__ = ["DEMO_PEOPLE", "run_demo"]

DEMO_DIRECTORY = Path(__file__).parent
DEMO_PEOPLE = [
    {"id": "ana", "email": "ana@example.com", "first_name": "Ana", "plan": "pro"},
    {"id": "ben", "email": "ben@example.com", "first_name": "Ben", "plan": "free"},
    {"id": "cleo", "email": "cleo@example.com", "first_name": "Cleo", "plan": "free"},
    {"id": "dev", "first_name": "Dev", "plan": "free"},
]


def _port(preferred: int) -> int:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            return free_port()
    return preferred


def run_demo(*, keep: bool = False, out: object = print) -> int:
    """Run the demo; returns a process exit code.

    Args:
        keep: keep the server and its UI running after the report, until Ctrl-C.
        out: where lines go (``print`` by default).

    """
    say = out if callable(out) else print
    with tempfile.TemporaryDirectory(prefix="journeys-demo-") as folder:
        server = DevServer(ui_port=_port(8233), log_file=Path(folder) / "temporal.log")
        say(f"starting the Temporal dev server (UI on {server.ui_url}) …")
        server.start()
        mail, hooks = MailCatcher().start(), WebhookSink().start()
        settings = Settings.model_validate(
            {
                "temporal": {"address": server.address, "task_queue": "journeys-demo"},
                "store": {"url": f"sqlite:///{folder}/store.db"},
                "email": {"host": "127.0.0.1", "port": mail.port},
                "webhook": {"allow_private": ["127.0.0.0/8"]},
            }
        )
        try:
            return asyncio.run(_demo(settings, server, mail, hooks, keep, say))
        finally:
            mail.stop()
            hooks.stop()
            server.stop()


async def _demo(
    settings: Settings,
    server: DevServer,
    mail: MailCatcher,
    hooks: WebhookSink,
    keep: bool,
    say: object,
) -> int:
    out = say if callable(say) else print
    async with (
        running_worker(settings),
        await JourneysClient.connect(settings, directory=DEMO_DIRECTORY) as client,
    ):
        out(f"worker running; mail catcher on :{mail.port}, webhook sink on :{hooks.port}")
        handle = await client.trigger("demo", DEMO_PEOPLE, data={"webhook_url": hooks.url})
        out(f"triggered journey 'demo' for {len(handle.runs)} people: {handle.trigger_id}")
        began = time.monotonic()
        seen: dict[str, str] = {}
        tracked = False
        status: RunStatus | TriggerStatus = await client.status(handle.trigger_id)
        while isinstance(status, TriggerStatus) and not status.done:
            for run in status.runs:
                where = run.current_step or run.state
                if seen.get(run.recipient_id) != where:
                    seen[run.recipient_id] = where
                    out(f"  [{time.monotonic() - began:5.1f}s] {run.recipient_id:<5} → {where}")
            if not tracked and time.monotonic() - began > 1.0:
                tracked = True
                await client.track("cleo", "app_activated", {"source": "demo"})
                out(f"  [{time.monotonic() - began:5.1f}s] cleo did app_activated (track)")
            if time.monotonic() - began > 120:
                out("the demo did not finish in 120 s")
                return 1
            await asyncio.sleep(0.25)
            status = await client.status(handle.trigger_id)
        assert isinstance(status, TriggerStatus)
        out("")
        for run in status.runs:
            out(run_text(run))
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
        if keep:
            out(f"the Temporal UI stays up at {server.ui_url}; Ctrl-C to stop")
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()
        return 1 if failed else 0
