"""Record the histories that tests/test_replay.py replays: ``python -m tests.record_histories``.

Run it when the example journeys change on purpose; commit the JSON it writes. A change
to the interpreter that makes these histories fail to replay would break runs in flight,
and needs ``workflow.patched``.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from journeys.client import JourneysClient
from journeys.config import Settings
from journeys.demo import DEMO_PEOPLE
from journeys.devserver import DevServer
from journeys.models import RunStatus, TriggerStatus
from journeys.sinks import MailCatcher, WebhookSink
from tests.helpers import EXAMPLES, eventually
from workers.worker import running_worker

HISTORIES = Path(__file__).parent / "histories"
VERSION = "v5"
"""Suffix of the histories recorded now; earlier ones stay, proving old runs still replay."""


async def record(server: DevServer, folder: str) -> None:
    mail, hooks, down = MailCatcher().start(), WebhookSink().start(), WebhookSink().start()
    down.status = 503  # a provider outage: sends wait for a retry, then are cancelled
    flaky = WebhookSink().start()
    flaky.status = 503  # one recipient's address fails for a while: the others go on
    settings = Settings.model_validate(
        {
            "temporal": {"address": server.address, "task_queue": "record"},
            "store": {"url": f"sqlite:///{folder}/store.db"},
            "email": {"host": "127.0.0.1", "port": mail.port},
            "webhook": {"allow_private": ["127.0.0.0/8"]},
        }
    )
    async with (
        running_worker(settings),
        await JourneysClient.connect(settings, directory=EXAMPLES) as client,
    ):

        async def status(run_id: str) -> RunStatus:
            found = await client.status(run_id)
            assert isinstance(found, RunStatus)
            return found

        demo = await client.trigger("demo", DEMO_PEOPLE, data={"webhook_url": hooks.url})
        await eventually(
            lambda: status(demo.runs[2].run_id),
            lambda s: s.current_step in ("wait_2s", "activation"),
        )
        await client.track("cleo", "app_activated")
        onboarding = await client.trigger(
            "onboarding",
            [
                {"id": "olga", "email": "olga@example.com", "plan": "pro"},
                {"id": "omar", "email": "omar@example.com"},
            ],
        )
        for run in onboarding.runs:
            await eventually(
                lambda run=run: status(run.run_id), lambda s: s.current_step == "wait_1d"
            )
        await client.track("olga", "subscription_started")
        await client.cancel(onboarding.runs[1].run_id)
        cohort = await client.trigger(
            "demo",
            [{**p, "id": f"{p['id']}-c"} for p in DEMO_PEOPLE],
            data={"webhook_url": hooks.url},
            cohorts=True,
        )
        await eventually(
            lambda: client.status(cohort.trigger_id, recipient="cleo-c"),
            lambda s: s.current_step in ("wait_2s", "activation"),
        )
        await client.track("cleo-c", "app_activated")
        done = await eventually(
            lambda: client.status(cohort.trigger_id), lambda s: s.done, timeout=60
        )
        assert isinstance(done, TriggerStatus)
        held = await client.trigger(
            "demo", [{"id": "held", "plan": "free"}], data={"webhook_url": down.url}
        )
        held_cohort = await client.trigger(
            "demo",
            [{"id": f"held-{n}", "plan": "free"} for n in range(3)],
            data={"webhook_url": down.url},
            cohorts=True,
        )

        async def waiting(recipient: str) -> bool:
            found = await client.messages(recipient=recipient)
            return any(m.step == "crm_note" and "last_error" in m.detail for m in found)

        apart = await client.trigger(
            "demo",
            [{"id": f"apart-{n}", "plan": "free"} for n in range(3)],
            data={"webhook_url": hooks.url},
            per_recipient_data={"apart-1": {"webhook_url": flaky.url}},
            cohorts=True,
        )
        for rid in ["held", "held-0", "held-1", "held-2", "apart-1"]:
            await eventually(lambda rid=rid: waiting(rid), bool, timeout=60)
        for rid in ["apart-0", "apart-2"]:  # on, and done, without apart-1
            await eventually(
                lambda rid=rid: client.status(apart.trigger_id, recipient=rid),
                lambda s: s.done,
                timeout=60,
            )
        flaky.status = 200
        apart_done = await eventually(
            lambda: client.status(apart.trigger_id), lambda s: s.done, timeout=60
        )
        assert isinstance(apart_done, TriggerStatus)
        await client.cancel(held.runs[0].run_id)
        one = await client.status(held_cohort.trigger_id, recipient="held-1")
        await client.cancel(one.run_id)
        await client.cancel(held_cohort.trigger_id)
        cancelled = await client.status(held_cohort.trigger_id)
        assert isinstance(cancelled, TriggerStatus)
        histories = {
            "demo-cohort": (done.cohorts[0].workflow_id, None),
            "demo-trigger": (f"demo/{cohort.trigger_id}", None),
            "demo-held": (held.runs[0].workflow_id, held.runs[0].run_id),
            "demo-held-cohort": (cancelled.cohorts[0].workflow_id, None),
            "demo-apart-cohort": (apart_done.cohorts[0].workflow_id, None),
        }
        for run in [*demo.runs, *onboarding.runs]:
            await eventually(lambda run=run: status(run.run_id), lambda s: s.done, timeout=60)
            histories[run.workflow_id.replace("/", "-")] = (run.workflow_id, run.run_id)
        for name, (workflow_id, run_id) in histories.items():
            handle = client.temporal.get_workflow_handle(workflow_id, run_id=run_id)
            history = await handle.fetch_history()
            (HISTORIES / f"{name}-{VERSION}.json").write_text(history.to_json())
            print(f"recorded {name}-{VERSION}")
    mail.stop()
    hooks.stop()
    down.stop()
    flaky.stop()


def main() -> None:
    """Record every history into tests/histories/."""
    HISTORIES.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as folder, DevServer() as server:
        asyncio.run(record(server, folder))


if __name__ == "__main__":
    main()
