"""Every step kind, exits, cancel, duplicates and edits, on a real Temporal server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from definitions.steps.split import SplitStep, choose_path
from definitions.steps.window import DAY_NAMES
from journeys import InvalidRecipientError, RunStatus, UnknownJourneyError
from journeys.client import JourneysClient
from journeys.devserver import DevServer
from journeys.sinks import MailCatcher, WebhookSink
from journeys.store import Store
from tests.conftest import engine_settings
from tests.helpers import Engine, copy_examples, eventually
from workers.worker import running_worker

SIMPLE_TEMPLATE = """
email:
  subject: "Hello {{ customer.first_name }} from {{ journey.name }}"
  html: "<p>Hi {{ customer.first_name }}, plan {{ trigger.plan_label }}</p>"
  text: "Hi {{ customer.first_name }}"
webhook:
  body: { who: "{{ customer.id }}", step: "{{ journey.step }}" }
"""


def steps_of(status: RunStatus) -> list[tuple[str, str]]:
    return [(e.step, e.outcome) for e in status.timeline]


async def test_send_wait_and_webhook(engine: Engine) -> None:
    engine.write("templates/hello", SIMPLE_TEMPLATE)
    engine.write(
        "basic",
        f"""
journey: basic
steps:
  - send: greet
    channel: email
    template: hello
  - wait: 1s
  - send: notify
    channel: webhook
    url: {engine.hooks.url}/notify
    template: hello
    headers: {{ x-team: growth }}
""",
    )
    handle = await engine.client.trigger(
        "basic",
        [{"id": "u1", "email": "u1@example.com", "first_name": "Ada"}],
        data={"plan_label": "gold"},
    )
    status = await engine.until_done(handle.run_id)
    assert status.state == "completed"
    assert steps_of(status) == [("greet", "sent"), ("wait_1s", "waited"), ("notify", "sent")]
    [message] = engine.mail.messages
    assert message["Subject"] == "Hello Ada from basic"
    assert message["To"] == "u1@example.com"
    assert message["Message-ID"]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Hi Ada, plan gold" in html
    [request] = engine.hooks.requests
    assert request.path == "/notify"
    assert request.body == {"who": "u1", "step": "notify"}
    assert request.headers["x-team"] == "growth"
    assert request.headers["webhook-id"].startswith("msg_")
    waited = status.timeline[1].at - status.timeline[0].at
    assert waited >= timedelta(seconds=1)


async def test_wait_for_event_arrives_or_times_out(engine: Engine) -> None:
    engine.write(
        "activation",
        """
journey: activation
steps:
  - wait_for: activated
    event: app_activated
    timeout: 2s
    on_timeout: exit
  - send: congrats
    channel: email
    template: welcome
""",
    )
    handle = await engine.client.trigger(
        "activation",
        [
            {"id": "fast", "email": "fast@example.com"},
            {"id": "slow", "email": "slow@example.com"},
        ],
    )
    fast, slow = handle.runs
    await engine.until_at(fast.run_id, "activated")
    assert (await engine.client.track("fast", "app_activated", {"via": "test"})).reached == 1
    done_fast = await engine.until_done(fast.run_id)
    done_slow = await engine.until_done(slow.run_id)
    assert steps_of(done_fast) == [("activated", "event arrived"), ("congrats", "sent")]
    assert done_fast.state == "completed"
    assert done_slow.state == "exited"
    assert ("activated", "timed out") in steps_of(done_slow)
    assert [m["To"] for m in engine.mail.messages] == ["fast@example.com"]


async def test_branch_on_attributes_and_segments(engine: Engine) -> None:
    engine.write(
        "branchy",
        """
journey: branchy
steps:
  - branch: plan_check
    if: { segment: pro_users }
    then:
      - send: pro
        channel: email
        template: pro_tips
    else:
      - branch: big_spender
        if: { all: [ { attribute: spend, op: gte, value: 100 }, { not: { attribute: country, op: in, value: [fr, de] } } ] }
        then:
          - exit: vip_elsewhere
  - send: everyone
    channel: email
    template: welcome
""",
    )
    handle = await engine.client.trigger(
        "branchy",
        [
            {"id": "p", "email": "p@example.com", "plan": "pro"},
            {"id": "v", "email": "v@example.com", "spend": 150, "country": "us"},
            {"id": "f", "email": "f@example.com", "spend": 150, "country": "fr"},
        ],
    )
    p, v, f = [await engine.until_done(run.run_id) for run in handle.runs]
    assert steps_of(p) == [("plan_check", "then"), ("pro", "sent"), ("everyone", "sent")]
    assert v.state == "exited" and v.exit_reason == "vip_elsewhere"
    assert ("everyone", "sent") not in steps_of(v)
    assert steps_of(f) == [("plan_check", "else"), ("big_spender", "else"), ("everyone", "sent")]


async def test_split_is_deterministic_per_recipient(engine: Engine) -> None:
    engine.write(
        "ab",
        """
journey: ab
steps:
  - split: subject_test
    paths:
      - name: a
        percent: 30
      - name: b
        percent: 70
""",
    )
    people = [f"person-{i}" for i in range(8)]
    handle = await engine.client.trigger("ab", list(people))
    plan = engine.client.library.compile("ab")
    step = plan.step("subject_test")
    assert isinstance(step, SplitStep)
    import hashlib

    for run in handle.runs:
        status = await engine.until_done(run.run_id)
        digest = hashlib.sha256(f"ab:subject_test:{run.recipient_id}".encode()).digest()
        expected = choose_path(step, int.from_bytes(digest[:8], "big") % 10000 / 100)
        assert steps_of(status) == [("subject_test", expected.name)]


async def test_window_open_now_and_window_later(engine: Engine) -> None:
    tomorrow = DAY_NAMES[(datetime.now(UTC) + timedelta(days=1)).weekday()]
    engine.write(
        "windows",
        f"""
journey: windows
steps:
  - window: any_time
    days: every_day
  - window: tomorrow_morning
    days: [{tomorrow}]
    between: "09:00-10:00"
  - send: late
    channel: email
    template: welcome
""",
    )
    handle = await engine.client.trigger("windows", [{"id": "w", "timezone": "Asia/Tokyo"}])
    run = handle.runs[0]
    status = await engine.until_at(run.run_id, "tomorrow_morning")
    assert steps_of(status) == [("any_time", "open")]
    timers = await eventually(
        lambda: engine.pending_timers(run.workflow_id, run.run_id),
        lambda t: len(t) == 1,
        what="window timer",
    )
    fire = timers[0].timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
    assert timedelta(0) < fire <= timedelta(days=2)
    cancelled = await engine.client.cancel(run.run_id)
    assert isinstance(cancelled, RunStatus) and cancelled.state == "cancelled"
    assert engine.mail.messages == []


async def test_long_wait_is_a_durable_timer_and_cancel_stops_it(engine: Engine) -> None:
    handle = await engine.client.trigger("onboarding", [{"id": "o1", "email": "o1@example.com"}])
    run = handle.runs[0]
    await engine.until_at(run.run_id, "wait_1d")
    timers = await eventually(
        lambda: engine.pending_timers(run.workflow_id, run.run_id),
        lambda t: len(t) == 1,
        what="the 1d timer",
    )
    attributes = timers[0].timer_started_event_attributes
    assert attributes.start_to_fire_timeout.ToTimedelta() == timedelta(days=1)
    assert "wait_1d: wait 1d" in timers[0].user_metadata.summary.data.decode()
    status = await engine.client.cancel(run.run_id)
    assert isinstance(status, RunStatus)
    assert status.state == "cancelled"
    assert status.timeline[-1].outcome == "cancelled"
    assert len(engine.mail.messages) == 1  # the welcome, and nothing after the cancel
    events = await engine.history_events(run.workflow_id, run.run_id)
    assert events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED
    scheduled = [e for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    assert (
        len(
            [
                e
                for e in scheduled
                if e.activity_task_scheduled_event_attributes.activity_type.name == "send_message"
            ]
        )
        == 1
    )


async def test_exit_when_interrupts_a_wait(engine: Engine) -> None:
    handle = await engine.client.trigger("onboarding", [{"id": "x1", "email": "x1@example.com"}])
    run = handle.runs[0]
    await engine.until_at(run.run_id, "wait_1d")
    await engine.client.track("x1", "subscription_started")
    status = await engine.until_done(run.run_id)
    assert status.state == "exited"
    assert status.exit_reason is not None and "subscription_started" in status.exit_reason
    assert [m["To"] for m in engine.mail.messages] == ["x1@example.com"]


async def test_exit_when_already_met_on_entry(engine: Engine) -> None:
    await engine.client.store.events.record("done-already", "subscription_started")
    handle = await engine.client.trigger("onboarding", [{"id": "done-already"}])
    status = await engine.until_done(handle.run_id)
    assert status.state == "exited"
    assert status.steps_done == []
    assert engine.mail.messages == []


async def test_duplicate_trigger_keeps_the_running_run(engine: Engine) -> None:
    first = await engine.client.trigger("onboarding", [{"id": "d1", "email": "d1@example.com"}])
    await engine.until_at(first.run_id, "wait_1d")
    second = await engine.client.trigger("onboarding", ["d1"])
    assert second.runs[0].started is False
    assert second.runs[0].run_id == first.run_id
    assert second.trigger_id != first.trigger_id
    assert len(engine.mail.messages) == 1
    await engine.client.cancel(first.run_id)


async def test_idempotency_key_makes_trigger_safe_to_retry(engine: Engine) -> None:
    one = await engine.client.trigger(
        "demo",
        [{"id": "i1"}, {"id": "i2"}],
        data={"webhook_url": engine.hooks.url},
        idempotency_key="signup-batch-7",
    )
    again = await engine.client.trigger(
        "demo",
        [{"id": "i1"}, {"id": "i2"}],
        data={"webhook_url": engine.hooks.url},
        idempotency_key="signup-batch-7",
    )
    assert again.trigger_id == one.trigger_id
    assert [r.run_id for r in again.runs] == [r.run_id for r in one.runs]
    cancelled = await engine.client.cancel(one.trigger_id)
    assert {r.state for r in cancelled.runs} == {"cancelled"}  # type: ignore[union-attr]


async def test_trigger_status_and_cancel_by_trigger_id(engine: Engine) -> None:
    handle = await engine.client.trigger("onboarding", ["t1", "t2", "t3"])
    await asyncio.gather(*(engine.until_at(r.run_id, "wait_1d") for r in handle.runs))
    status = await engine.client.status(handle.trigger_id)
    assert status.counts == {"running": 3}  # type: ignore[union-attr]
    by_workflow_id = await engine.client.status("onboarding/t2")
    assert isinstance(by_workflow_id, RunStatus) and by_workflow_id.recipient_id == "t2"
    cancelled = await engine.client.cancel(handle.trigger_id)
    assert cancelled.counts == {"cancelled": 3}  # type: ignore[union-attr]


async def test_bad_input_starts_nothing(engine: Engine) -> None:
    with pytest.raises(UnknownJourneyError) as unknown:
        await engine.client.trigger("onbaording", ["u1"])
    assert "demo" in unknown.value.available and "onboarding" in unknown.value.available
    with pytest.raises(InvalidRecipientError) as bad:
        await engine.client.trigger("onboarding", ["ok-1", 42, {"email": "x@example.com"}, "ok-1"])
    assert bad.value.problems == [
        "recipients[1]: expected an id (a non-empty string) or a mapping with an 'id', found 42",
        "recipients[2]: expected an id (a non-empty string) or a mapping with an 'id', "
        "found no 'id'",
        "recipients[3]: expected each recipient once, found 'ok-1' again (first at recipients[0])",
    ]
    store: Store = engine.client.store
    assert await store.profiles.get("ok-1") is None
    assert await store.runs.open_of("ok-1") == []


async def test_editing_yaml_mid_run_does_not_change_the_run(engine: Engine) -> None:
    engine.write("templates/note", 'email: { subject: "version one", text: "v1" }')
    engine.write(
        "editable",
        """
journey: editable
steps:
  - wait_for: go
    event: go
    timeout: 1h
  - send: note
    channel: email
    template: note
""",
    )
    handle = await engine.client.trigger("editable", [{"id": "e1", "email": "e1@example.com"}])
    await engine.until_at(handle.run_id, "go")
    engine.write("templates/note", 'email: { subject: "version two", text: "v2" }')
    engine.write("editable", "journey: editable\nsteps:\n  - wiat: broken\n")
    await engine.client.track("e1", "go")
    status = await engine.until_done(handle.run_id)
    assert status.state == "completed"
    assert [m["Subject"] for m in engine.mail.messages] == ["version one"]


async def test_failed_send_is_recorded_and_the_journey_goes_on(engine: Engine) -> None:
    engine.hooks.status = 410
    engine.write(
        "gone",
        f"""
journey: gone
steps:
  - send: ping
    channel: webhook
    url: {engine.hooks.url}/gone
  - send: after
    channel: email
    template: welcome
""",
    )
    handle = await engine.client.trigger("gone", [{"id": "g1", "email": "g1@example.com"}])
    status = await engine.until_done(handle.run_id)
    assert steps_of(status) == [("ping", "failed"), ("after", "sent")]
    assert "410" in status.timeline[0].detail["error"]
    assert len(engine.hooks.requests) == 1  # a 410 is permanent: not retried


async def test_a_journey_with_the_store_on_postgresql(
    temporal_server: DevServer,
    temporal: Client,
    postgres_url: str,
    mail: MailCatcher,
    hooks: WebhookSink,
    tmp_path: Path,
) -> None:
    settings = engine_settings(temporal_server.address, postgres_url, mail.port)
    directory = copy_examples(tmp_path / "journeys")
    async with (
        running_worker(settings, client=temporal),
        await JourneysClient.connect(settings, directory=directory) as client,
    ):
        engine = Engine(client, temporal, settings, directory, mail, hooks)
        handle = await client.trigger(
            "demo",
            [
                {"id": "pg-1", "email": "pg1@example.com", "plan": "pro"},
                {"id": "pg-2"},
            ],
            data={"webhook_url": hooks.url},
        )
        await engine.until_at(handle.runs[0].run_id, "activation")
        await client.track("pg-1", "app_activated")
        one, two = [await engine.until_done(r.run_id) for r in handle.runs]
    assert steps_of(one)[-2:] == [("plan_check", "then"), ("pro_tips", "sent")]
    assert steps_of(two)[0] == ("welcome", "skipped")
    assert steps_of(two)[-1] == ("crm_note", "sent")
    assert [r.path for r in hooks.requests] == ["/crm"]


async def test_the_synchronous_functions(engine: Engine) -> None:
    import journeys

    def use_sync_api() -> tuple[str, str, str]:
        journeys.configure(engine.settings, directory=str(engine.directory))
        try:
            handle = journeys.trigger("onboarding", recipients=[{"id": "s1"}])
            first = journeys.status(handle.run_id)
            journeys.track("s1", "app_activated")
            last = journeys.cancel(handle.run_id)
            assert isinstance(first, RunStatus) and isinstance(last, RunStatus)
            return handle.run_id, first.state, last.state
        finally:
            journeys.configure(None)

    run_id, first, last = await asyncio.to_thread(use_sync_api)
    assert (first, last) == ("running", "cancelled")
    assert (await engine.run_status(run_id)).state == "cancelled"


async def test_cancel_during_a_send_lets_that_send_finish_and_nothing_after(
    engine: Engine,
) -> None:
    engine.write(
        "inflight",
        f"""
journey: inflight
steps:
  - send: slow_hook
    channel: webhook
    url: {engine.hooks.url}/slow
  - send: never
    channel: email
    template: welcome
""",
    )
    engine.hooks.hold.clear()
    handle = await engine.client.trigger("inflight", [{"id": "f1", "email": "f1@example.com"}])
    await asyncio.to_thread(engine.hooks.arrived.wait, 30)
    cancelling = asyncio.create_task(engine.client.cancel(handle.run_id))
    run = handle.runs[0]
    await eventually(
        lambda: engine.history_events(run.workflow_id, run.run_id),
        lambda events: any(
            e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED for e in events
        ),
        what="the cancel request in the history",
    )
    engine.hooks.hold.set()
    status = await cancelling
    assert isinstance(status, RunStatus)
    assert status.state == "cancelled"
    assert steps_of(status) == [("slow_hook", "sent"), ("slow_hook", "cancelled")]
    assert engine.mail.messages == []


async def test_jinja_templates_and_html_escaping(engine: Engine) -> None:
    engine.write(
        "templates/jinja_note",
        """
engine: jinja
email:
  subject: "{{ customer.first_name | upper }} has {{ trigger.count }} items"
  html: "<p>{{ customer.first_name }}</p>"
""",
    )
    engine.write(
        "jinja",
        """
journey: jinja
steps:
  - send: note
    channel: email
    template: jinja_note
""",
    )
    handle = await engine.client.trigger(
        "jinja",
        [{"id": "j1", "email": "j1@example.com", "first_name": "<b>Jo</b>"}],
        data={"count": 3},
    )
    await engine.until_done(handle.run_id)
    [message] = engine.mail.messages
    assert message["Subject"] == "<B>JO</B> has 3 items"
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<p>&lt;b&gt;Jo&lt;/b&gt;</p>" in html


async def test_exit_when_on_an_attribute_is_checked_before_each_step(engine: Engine) -> None:
    engine.write(
        "polite",
        """
journey: polite
exit_when: { attribute: unsubscribed, op: eq, value: true }
steps:
  - wait_for: ready
    event: ready
    timeout: 1h
  - send: never
    channel: email
    template: welcome
""",
    )
    handle = await engine.client.trigger("polite", [{"id": "q1", "email": "q1@example.com"}])
    await engine.until_at(handle.run_id, "ready")
    await engine.client.store.profiles.upsert([("q1", {"unsubscribed": True})])
    await engine.client.track("q1", "ready")
    status = await engine.until_done(handle.run_id)
    assert status.state == "exited"
    assert status.exit_reason == "exit_when met (before never)"
    assert engine.mail.messages == []
