"""Cohorts behave as the same recipients run one by one, for every step kind.

Behaviour, not speed: a cohort and the same people triggered alone reach the same
messages and the same outcomes, early ``wait_for`` arrivals and exits included; windows
group a cohort by timezone; one recipient of a cohort can be cancelled; large triggers
are paged into cohort workflows with every recipient accounted for.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from journeys.models import RunStatus, TriggerStatus
from tests.helpers import Engine, eventually

PARITY = """
journey: parity
exit_when: {{ event: purchased }}
steps:
  - send: hello
    channel: sms
    fallback: [email]
    template: welcome
  - branch: plan_check
    if: {{ attribute: plan, value: pro }}
    then:
      - send: pro_hook
        channel: webhook
        url: "{sink}/pro"
    else:
      - split: ab
        paths:
          - name: a
            percent: 50
            steps:
              - send: a_hook
                channel: webhook
                url: "{sink}/a"
          - name: b
            percent: 50
            steps: []
  - wait_for: clicked
    event: clicked
    timeout: 3s
    on_timeout: continue
  - wait_for: confirmed
    event: confirmed
    timeout: 1s
    on_timeout: exit
  - send: done_hook
    channel: webhook
    url: "{sink}/done"
"""


def people(prefix: str) -> list[dict[str, Any]]:
    """Twelve people: pro or not, with or without a phone."""
    return [
        {
            "id": f"{prefix}{i}",
            "email": f"{prefix}{i}@example.com",
            "plan": "pro" if i % 3 == 0 else "free",
            **({"phone": f"+4479111234{i:02d}"} if i % 4 == 0 else {}),
        }
        for i in range(12)
    ]


def outcomes(status: RunStatus) -> list[tuple[str, str, str]]:
    return [(e.step, e.kind, e.outcome) for e in status.timeline]


async def trigger_done(engine: Engine, trigger_id: str, timeout: float = 60) -> TriggerStatus:
    async def probe() -> TriggerStatus:
        status = await engine.client.status(trigger_id)
        assert isinstance(status, TriggerStatus)
        return status

    return await eventually(probe, lambda s: s.done, timeout=timeout, what="the trigger's end")


async def member(engine: Engine, trigger_id: str, recipient: str) -> RunStatus:
    status = await engine.client.status(trigger_id, recipient=recipient)
    assert isinstance(status, RunStatus)
    return status


async def play(engine: Engine, *, cohort: bool) -> dict[str, RunStatus]:
    """Trigger the parity journey; some click early, one purchases, two confirm."""
    group = people("p")
    handle = await engine.client.trigger(
        "parity", group, data={"sink": engine.hooks.url}, cohorts=cohort
    )
    ids = [p["id"] for p in group]

    async def status_of(rid: str) -> RunStatus:
        return await member(engine, handle.trigger_id, rid)

    async def until_at(rid: str, step: str) -> None:
        await eventually(lambda: status_of(rid), lambda s: s.current_step == step)

    for rid in ids:  # everyone is in the journey before the events come
        await eventually(lambda rid=rid: status_of(rid), lambda s: s.current_step is not None)
    for rid in ("p1", "p2", "p5"):  # may come before the wait: counts when they get there
        await engine.client.track(rid, "clicked")
    await until_at("p7", "clicked")
    await engine.client.track("p7", "purchased")  # the goal: leaves at once
    for rid in ("p1", "p5"):  # confirm once at the second wait, so the event is not early
        await until_at(rid, "confirmed")
        await engine.client.track(rid, "confirmed")
    return {
        rid: await eventually(
            lambda rid=rid: status_of(rid), lambda s: s.done, timeout=60, what=f"{rid} done"
        )
        for rid in ids
    }


def deliveries(engine: Engine) -> dict[str, list[str]]:
    """What reached each person, by channel and hook path, and empty the sinks."""
    got: dict[str, list[str]] = {f"p{i}": [] for i in range(12)}
    for message in engine.mail.messages:
        got[message["To"].split("@")[0]].append("email")
    for request in engine.hooks.requests:
        got[request.body["customer"]["id"]].append(f"hook{request.path}")
    assert engine.twilio is not None
    for sms in engine.twilio.sent:
        got[f"p{int(sms['To'][-2:])}"].append("sms")
    engine.mail.messages.clear()
    engine.hooks.requests.clear()
    engine.twilio.sent.clear()
    return {rid: sorted(items) for rid, items in got.items()}


async def test_a_cohort_reaches_what_the_same_people_reach_one_by_one(engine: Engine) -> None:
    engine.write("parity", PARITY.format(sink="{{ trigger.sink }}"))
    alone = await play(engine, cohort=False)
    alone_got = deliveries(engine)
    for rid in alone:  # the same people again, with no events and no messages yet
        await engine.client.store.profiles.delete(rid)
    together = await play(engine, cohort=True)
    together_got = deliveries(engine)
    assert {k: outcomes(v) for k, v in together.items()} == {
        k: outcomes(v) for k, v in alone.items()
    }
    assert {k: v.state for k, v in together.items()} == {k: v.state for k, v in alone.items()}
    assert together_got == alone_got
    # The cases the journey was written for all happened.
    assert together["p7"].state == "exited"
    assert outcomes(together["p7"])[-1] == ("clicked", "exit", "left the journey")
    assert together["p1"].state == "completed"
    assert ("clicked", "wait_for", "event arrived") in outcomes(together["p2"])
    assert ("confirmed", "wait_for", "timed out") in outcomes(together["p2"])
    assert together["p2"].state == "exited"
    assert ("clicked", "wait_for", "timed out") in outcomes(together["p3"])
    assert together_got["p0"] == ["hook/pro", "sms"]  # pro with a phone; never confirmed
    assert {"sms", "email"} <= {item for items in together_got.values() for item in items}
    assert {"hook/a", "hook/pro", "hook/done"} <= {
        item for items in together_got.values() for item in items
    }


async def test_a_cohort_status_counts_each_step(engine: Engine) -> None:
    engine.write(
        "counted",
        f"""
journey: counted
steps:
  - send: hello
    channel: email
    template: welcome
  - branch: plan_check
    if: {{ attribute: plan, value: pro }}
    then:
      - send: pro_hook
        channel: webhook
        url: {engine.hooks.url}/pro
""",
    )
    group = people("n")
    handle = await engine.client.trigger("counted", group, cohorts=True)
    assert handle.cohorts and handle.runs == [] and handle.recipients == 12
    status = await trigger_done(engine, handle.trigger_id)
    assert status.counts == {"completed": 12}
    assert status.started == 12 and status.skipped == 0
    assert status.steps["hello"] == {"reached": 12, "sent": 12}
    assert status.steps["plan_check"] == {"reached": 12, "then": 4, "else": 8}
    assert status.steps["pro_hook"] == {"reached": 4, "sent": 4}
    [cohort] = status.cohorts
    assert cohort.workflow_id == f"counted/{handle.trigger_id}/cohort-1"
    one = await member(engine, handle.trigger_id, "n3")
    assert [(e.step, e.outcome) for e in one.timeline] == [
        ("hello", "sent"),
        ("plan_check", "then"),
        ("pro_hook", "sent"),
    ]
    assert one.timeline[0].detail["message_id"] == (
        f"{cohort.workflow_id}/{one.run_id}/hello/email"
    )


async def test_windows_group_a_cohort_by_timezone(engine: Engine) -> None:
    """It is morning in one timezone and not in the other: one group goes on, one waits."""
    now = datetime.now(UTC)
    zones = ["UTC", "Asia/Tokyo", "America/Los_Angeles", "Asia/Kolkata"]
    offsets = {"UTC": 0, "Asia/Tokyo": 9, "America/Los_Angeles": -8, "Asia/Kolkata": 5.5}
    open_zone = "UTC"
    hour = now.hour
    end = min(hour + 2, 24)  # open in UTC now, and not in the others (they are hours apart)
    engine.write(
        "zoned",
        f"""
journey: zoned
steps:
  - window: office
    days: every_day
    between: "{hour:02d}:00-{end:02d}:00"
  - send: opened
    channel: webhook
    url: {engine.hooks.url}/opened
""",
    )
    group = [{"id": f"z{i}", "timezone": zone} for i, zone in enumerate(zones)]
    handle = await engine.client.trigger("zoned", group, cohorts=True)
    await eventually(
        lambda: asyncio.to_thread(lambda: len(engine.hooks.requests)),
        lambda n: n >= 1,
        what="the open group's webhook",
    )
    status = await engine.client.status(handle.trigger_id)
    assert isinstance(status, TriggerStatus)
    waiting = {
        rid: (await member(engine, handle.trigger_id, rid)).current_step
        for rid in ("z1", "z2", "z3")
    }
    assert waiting == {"z1": "office", "z2": "office", "z3": "office"}
    assert [r.body["customer"]["id"] for r in engine.hooks.requests] == ["z0"]
    assert status.steps["office"]["open"] == 1
    assert status.steps["office"]["waiting"] == 3
    # One timer at a time: the next group to open (the three others open at other times).
    [cohort] = status.cohorts
    timers = await engine.pending_timers(cohort.workflow_id, "")
    assert len(timers) == 1
    fire = timers[0].timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
    soonest = min(
        (24 - offsets[z] if offsets[z] > 0 else -offsets[z]) % 24 for z in zones if z != open_zone
    )
    assert timedelta(hours=soonest - 1) < fire <= timedelta(hours=soonest)
    # The same timezones one by one: the same one goes on, the others wait for the same hour.
    alone = await engine.client.trigger(
        "zoned", [{"id": f"y{i}", "timezone": zone} for i, zone in enumerate(zones)], cohorts=False
    )
    fires = {}
    for i, run in enumerate(alone.runs):
        status_one = await eventually(
            lambda run=run: engine.run_status(run.run_id),
            lambda s: s.done or s.current_step == "office",
        )
        if i == 0:
            status_one = await engine.until_done(run.run_id)
            assert status_one.state == "completed"
            continue
        assert status_one.current_step == "office"
        [timer] = await eventually(
            lambda run=run: engine.pending_timers(run.workflow_id, run.run_id),
            lambda t: len(t) == 1,
        )
        fires[zones[i]] = timer.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
    assert abs(min(fires.values()) - fire) < timedelta(minutes=1)
    cancelled = await engine.client.cancel(handle.trigger_id)
    assert isinstance(cancelled, TriggerStatus)
    assert cancelled.counts == {"completed": 1, "cancelled": 3}
    await engine.client.cancel(alone.trigger_id)


async def test_one_recipient_of_a_cohort_is_cancelled_alone(engine: Engine) -> None:
    group = [{"id": f"o{i}", "email": f"o{i}@example.com"} for i in range(3)]
    handle = await engine.client.trigger("onboarding", group, cohorts=True)
    for rid in ("o0", "o1", "o2"):
        await eventually(
            lambda rid=rid: member(engine, handle.trigger_id, rid),
            lambda s: s.current_step == "wait_1d",
        )
    one = await member(engine, handle.trigger_id, "o1")
    cancelled = await engine.client.cancel(one.run_id)
    assert isinstance(cancelled, RunStatus) and cancelled.state == "cancelled"
    assert [e.outcome for e in cancelled.timeline][-1] == "cancelled"
    others = [await member(engine, handle.trigger_id, rid) for rid in ("o0", "o2")]
    assert [s.state for s in others] == ["running", "running"]
    # An event for the cancelled recipient changes nothing; the others still get theirs.
    assert (await engine.client.track("o1", "subscription_started")).reached == 0
    await engine.client.track("o2", "subscription_started")
    left = await eventually(
        lambda: member(engine, handle.trigger_id, "o2"), lambda s: s.done, what="o2 exits"
    )
    assert left.state == "exited"
    status = await engine.client.cancel(handle.trigger_id)
    assert isinstance(status, TriggerStatus)
    assert status.counts == {"cancelled": 2, "exited": 1}
    assert len(engine.mail.messages) == 3  # the welcome email each, nothing after


async def test_a_recipient_already_in_the_journey_keeps_their_run(engine: Engine) -> None:
    first = await engine.client.trigger("onboarding", [{"id": "k1", "email": "k1@example.com"}])
    await engine.until_at(first.run_id, "wait_1d")
    handle = await engine.client.trigger("onboarding", ["k1", "k2", "k3"], cohorts=True)
    status = await eventually(
        lambda: engine.client.status(handle.trigger_id),
        lambda s: isinstance(s, TriggerStatus) and not s.starting,
    )
    assert isinstance(status, TriggerStatus)
    assert status.started == 2 and status.skipped == 1
    # And the other way round: alone, a recipient of a running cohort is not started again.
    again = await engine.client.trigger("onboarding", ["k2"])
    assert again.runs[0].started is False
    assert again.runs[0].workflow_id == f"onboarding/{handle.trigger_id}/cohort-1"
    await engine.client.cancel(handle.trigger_id)
    await engine.client.cancel(first.run_id)


async def test_a_large_trigger_is_paged_into_cohorts_and_everyone_is_accounted_for(
    engine: Engine,
) -> None:
    engine.client.cohort_settings = engine.client.cohort_settings.model_copy(update={"size": 500})
    engine.write(
        "bulk",
        f"""
journey: bulk
steps:
  - send: note
    channel: webhook
    url: {engine.hooks.url}/note
  - wait: 1s
  - send: hello
    channel: email
    template: welcome
""",
    )
    group = [{"id": f"b{i:04d}", "email": f"b{i}@example.com"} for i in range(2000)]
    handle = await engine.client.trigger("bulk", group)
    assert handle.cohorts and handle.recipients == 2000
    status = await trigger_done(engine, handle.trigger_id, timeout=300)
    assert status.counts == {"completed": 2000}
    assert len(status.cohorts) == 4 and {c.members for c in status.cohorts} == {500}
    assert status.steps["hello"] == {"reached": 2000, "sent": 2000}
    assert len(engine.mail.messages) == 2000
    assert len({m["To"] for m in engine.mail.messages}) == 2000
    assert len({r.body["customer"]["id"] for r in engine.hooks.requests}) == 2000
    assert len(engine.hooks.requests) == 2000
    runs = await engine.client.store.runs.of_trigger(handle.trigger_id)
    assert len(runs) == 2000 and all(r.closed and r.member for r in runs)
    # Few history events per recipient: the point of cohorts.
    events = 0
    for cohort in status.cohorts:
        events += len(await engine.history_events(cohort.workflow_id, ""))
    assert events / 2000 < 0.5


async def test_a_cohort_of_one_is_what_a_single_trigger_runs(engine: Engine) -> None:
    handle = await engine.client.trigger("onboarding", [{"id": "solo", "email": "s@example.com"}])
    run = handle.runs[0]
    assert run.workflow_id == "onboarding/solo"
    await engine.until_at(run.run_id, "wait_1d")
    events = await engine.history_events(run.workflow_id, run.run_id)
    markers = [
        e.marker_recorded_event_attributes.SerializeToString()
        for e in events
        if e.HasField("marker_recorded_event_attributes")
    ]
    assert any(b"cohorts" in m for m in markers), "new runs take the cohort interpreter"
    await engine.client.cancel(run.run_id)


async def test_a_cohort_continues_as_new_without_losing_anyone(engine: Engine) -> None:
    """A tiny history limit makes the cohort roll over at its waits; nothing is lost or resent."""
    engine.client.cohort_settings = engine.client.cohort_settings.model_copy(
        update={"history_limit": 30}
    )
    engine.write(
        "rolling",
        f"""
journey: rolling
steps:
  - send: one
    channel: webhook
    url: {engine.hooks.url}/one
  - wait: 1s
  - send: two
    channel: webhook
    url: {engine.hooks.url}/two
  - wait_for: clicked
    event: clicked
    timeout: 4s
  - send: three
    channel: webhook
    url: {engine.hooks.url}/three
""",
    )
    group = [f"r{i}" for i in range(10)]
    handle = await engine.client.trigger("rolling", group, cohorts=True)
    for rid in ("r1", "r2", "r3"):
        await eventually(
            lambda rid=rid: member(engine, handle.trigger_id, rid),
            lambda s: s.current_step == "clicked",
        )
        await engine.client.track(rid, "clicked")
    status = await trigger_done(engine, handle.trigger_id)
    assert status.counts == {"completed": 10}
    assert status.steps["clicked"]["event arrived"] == 3
    assert status.steps["clicked"]["timed out"] == 7
    assert status.steps["three"] == {"reached": 10, "sent": 10}
    paths = sorted(f"{r.path}:{r.body['customer']['id']}" for r in engine.hooks.requests)
    assert paths == sorted(f"/{n}:{rid}" for n in ("one", "two", "three") for rid in group)
    one = await member(engine, handle.trigger_id, "r1")
    assert [(e.step, e.outcome) for e in one.timeline] == [
        ("one", "sent"),
        ("wait_1s", "waited"),
        ("two", "sent"),
        ("clicked", "event arrived"),
        ("three", "sent"),
    ]
    [cohort] = status.cohorts
    runs = [w async for w in engine.temporal.list_workflows(f"WorkflowId = '{cohort.workflow_id}'")]
    assert len(runs) >= 2, "the cohort continued as new at least once"
