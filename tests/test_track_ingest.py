"""Event ingest: what ``track`` re-evaluates, de-duplication under concurrency, signals."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest
from pydantic import TypeAdapter

from definitions.conditions import Condition
from journeys.client.watch import watch
from journeys.store import Store
from tests.helpers import Engine

CONDITION: TypeAdapter[Condition] = TypeAdapter(Condition)


def watched(rule: dict[str, Any]) -> tuple[set[str], bool]:
    found = watch(CONDITION.validate_python(rule))
    return set(found.events), found.always


@pytest.mark.parametrize(
    ("rule", "events", "always"),
    [
        ({"attribute": "plan", "value": "pro"}, set(), False),
        ({"event": "purchase", "count": {"gte": 2}}, {"purchase"}, False),
        ({"event": "purchase"}, {"purchase"}, False),
        (
            {"all": [{"attribute": "plan", "value": "pro"}, {"event": "login"}]},
            {"login"},
            False,
        ),
        ({"any": [{"event": "a"}, {"event": "b", "count": {"gt": 3}}]}, {"a", "b"}, False),
        ({"segment": "vip", "manual": True}, set(), False),
        # Time passes: looked at again after every event, as before.
        ({"event": "login", "within": "7d"}, {"login"}, True),
        # Can hold for the empty profile an event creates.
        ({"attribute": "plan", "op": "ne", "value": "pro"}, set(), True),
        ({"attribute": "plan", "op": "exists", "value": False}, set(), True),
        ({"event": "login", "happened": False}, {"login"}, True),
        ({"event": "login", "count": {"lt": 2}}, {"login"}, True),
        ({"not": {"attribute": "plan", "value": "pro"}}, set(), True),
        # A segment whose rule is elsewhere (defined through the API).
        ({"segment": "elsewhere"}, set(), True),
    ],
)
def test_which_events_can_change_a_segment(
    rule: dict[str, Any], events: set[str], always: bool
) -> None:
    assert watched(rule) == (events, always)


SEGMENTS = """
segments:
  pro_users: { attribute: plan, op: eq, value: pro }
  buyers: { event: purchase, count: { gte: 2 } }
"""


def _journey(name: str, segment: str) -> str:
    return (
        f"journey: {name}\ntrigger: {{ segment: {segment} }}\nsteps:\n"
        "  - send: hello\n    channel: email\n    template: welcome\n"
    )


async def test_an_event_re_evaluates_only_the_segments_it_can_change(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine.write("segments", SEGMENTS)
    engine.write("pro_hello", _journey("pro_hello", "pro_users"))
    engine.write("buyer_thanks", _journey("buyer_thanks", "buyers"))
    store = engine.client.store
    asked: list[set[str]] = []
    original = store.segments.entered

    async def spy(recipient_id: str, segments: Mapping[str, Any], lookup: Any = None) -> set[str]:
        asked.append(set(segments))
        return await original(recipient_id, segments, lookup)

    compared: list[dict[str, set[str]]] = []
    original_changed = store.segments.changed

    async def spy_changed(people: Mapping[str, Mapping[str, Any]], lookup: Any = None) -> set[str]:
        compared.append({person: set(segments) for person, segments in people.items()})
        return await original_changed(people, lookup)

    monkeypatch.setattr(store.segments, "entered", spy)
    monkeypatch.setattr(store.segments, "changed", spy_changed)
    entered = await engine.client.identify("w1", {"plan": "pro", "email": "w1@example.com"})
    assert [h.journey for h in entered] == ["pro_hello"]
    assert asked == [{"pro_users", "buyers"}]  # identify: every trigger segment
    asked.clear()
    assert (await engine.client.track("w1", "page_view")).started == []
    assert asked == compared == []  # page_view changes neither segment: nothing is read
    assert (await engine.client.track("w1", "purchase")).started == []
    # purchase: buyers only, never pro_users; one purchase changes no membership, so the
    # read of the event's group says so and entered() (which locks the person) is not asked
    assert compared == [{"w1": {"buyers"}}]
    assert asked == []
    bought = await engine.client.track("w1", "purchase")
    assert [h.journey for h in bought.started] == ["buyer_thanks"]
    assert compared == [{"w1": {"buyers"}}, {"w1": {"buyers"}}]
    assert asked == [{"buyers"}]
    for handle in [*entered, *bought.started]:
        await engine.until_done(handle.run_id)


async def test_a_journey_added_later_is_seen_by_the_next_event(engine: Engine) -> None:
    assert (await engine.client.track("n1", "signed_up_late")).started == []
    engine.write(
        "late",
        "journey: late\ntrigger: { event: signed_up_late }\nsteps:\n"
        "  - send: hello\n    channel: email\n    template: welcome\n",
    )
    result = await engine.client.track("n2", "signed_up_late")
    assert [h.journey for h in result.started] == ["late"]
    await engine.until_done(result.started[0].run_id)


async def test_a_new_person_enters_a_segment_the_empty_profile_is_in(engine: Engine) -> None:
    engine.write("segments", "segments:\n  not_pro: { attribute: plan, op: ne, value: pro }\n")
    engine.write("not_pro_hello", _journey("not_pro_hello", "not_pro"))
    result = await engine.client.track("fresh", "page_view")
    assert [h.journey for h in result.started] == ["not_pro_hello"]
    await engine.until_done(result.started[0].run_id)


async def test_signals_still_reach_a_waiting_run(engine: Engine) -> None:
    engine.write(
        "waits",
        "journey: waits\nsteps:\n  - wait_for: go\n    event: go\n    timeout: 1h\n"
        "  - send: hello\n    channel: email\n    template: welcome\n",
    )
    await engine.client.identify("g1", {"email": "g1@example.com"})
    handle = await engine.client.trigger("waits", ["g1"])
    result = await engine.client.track("g1", "go")
    assert result.recorded and result.reached == 1
    status = await engine.until_done(handle.runs[0].run_id)
    assert status.state == "completed"


async def test_concurrent_tracks_of_one_event_id_record_it_once(store: Store) -> None:
    ids = await asyncio.gather(
        *(
            store.events.record("dup-1", "opened", {"n": i}, event_id="same-id", create_person=True)
            for i in range(30)
        )
    )
    assert sum(ids) == 1
    assert await store.events.count("dup-1", "opened") == 1


async def test_a_repeat_of_an_event_id_recorded_before_a_group_is_skipped(store: Store) -> None:
    first = await store.events.record("dup-2", "opened", event_id="before", create_person=True)
    again = await asyncio.gather(
        store.events.record("dup-2", "opened", event_id="before", create_person=True),
        store.events.record("dup-2", "opened", event_id="fresh", create_person=True),
        store.events.record("dup-2", "opened", create_person=True),
    )
    assert first is True
    assert again == [False, True, True]
    assert await store.events.count("dup-2", "opened") == 3


async def test_one_bad_event_in_a_group_fails_only_its_own_caller(store: Store) -> None:
    calls = [
        store.events.record(f"grp-{i}", "opened", {"n": i}, create_person=True) for i in range(20)
    ]
    calls.insert(7, store.events.record("grp-bad", "opened", {"x": object()}))  # type: ignore[dict-item]
    answers = await asyncio.gather(*calls, return_exceptions=True)
    failed = [a for a in answers if isinstance(a, BaseException)]
    assert len(failed) == 1 and isinstance(answers[7], BaseException)
    assert all(a is True for i, a in enumerate(answers) if i != 7)
    for i in range(20):
        assert await store.events.count(f"grp-{i}", "opened") == 1
    assert await store.events.count("grp-bad", "opened") == 0


async def test_a_batch_of_tracks_keeps_each_operation_s_result_and_order(engine: Engine) -> None:
    engine.write("segments", SEGMENTS)
    engine.write("buyer_thanks", _journey("buyer_thanks", "buyers"))
    for i in range(3):
        await engine.client.identify(f"b{i}", {"email": f"b{i}@example.com"})
    ops: list[dict[str, Any]] = [
        {"type": "track", "id": "b0", "event": "purchase", "event_id": "x1"},
        {"type": "track", "id": "b1", "event": "purchase", "event_id": "x1"},  # a repeat
        {"type": "track", "id": "b2", "event": "purchase"},
        {"type": "track", "id": "b0", "event": "purchase"},  # b0's second: enters buyers
        {"type": "track", "id": "b1", "event": 7},  # bad: its own error
        {"type": "track", "id": "b1", "event": "purchase"},
        {"type": "identify", "id": "b2", "attributes": {"plan": "pro"}},
        {"type": "track", "id": "b2", "event": "purchase"},  # b2's second: enters buyers
    ]
    results = await engine.client.batch(ops)
    assert [r.index for r in results] == list(range(len(ops)))
    assert [r.ok for r in results] == [True, True, True, True, False, True, True, True]
    assert [len(r.started) for r in results] == [0, 0, 0, 1, 0, 0, 0, 1]
    assert await engine.client.store.events.count("b0", "purchase") == 2
    assert await engine.client.store.events.count("b1", "purchase") == 1  # x1 was b0's
    assert await engine.client.store.events.count("b2", "purchase") == 2
    for r in results:
        for run_id in r.started:
            await engine.until_done(run_id)


async def test_tracks_at_the_same_time_share_their_reads(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine.write("segments", SEGMENTS)
    engine.write("buyer_thanks", _journey("buyer_thanks", "buyers"))
    engine.write(
        "waits",
        "journey: waits\nsteps:\n  - wait_for: purchase\n    event: purchase\n    timeout: 1h\n",
    )
    await engine.client.identify("sh-0", {"email": "sh-0@example.com"})
    waiting = await engine.client.trigger("waits", ["sh-0"])
    await engine.client.track("sh-1", "purchase")  # sh-1's second purchase enters buyers
    store = engine.client.store
    reads: list[int] = []
    original = store.runs.open_of_people

    async def spy(recipient_ids: Any) -> Any:
        reads.append(len(recipient_ids))
        return await original(recipient_ids)

    monkeypatch.setattr(store.runs, "open_of_people", spy)
    results = await asyncio.gather(*(engine.client.track(f"sh-{i}", "purchase") for i in range(30)))
    # the first goes at once; the others queued meanwhile share the next group's reads
    assert sum(reads) == 30 and len(reads) < 30
    assert all(r.recorded for r in results)
    assert [r.reached for r in results] == [1] + [0] * 29  # sh-0's run waits for it
    assert [h.journey for h in results[1].started] == ["buyer_thanks"]
    assert all(r.started == [] for i, r in enumerate(results) if i != 1)
    await engine.until_done(waiting.runs[0].run_id)
    await engine.until_done(results[1].started[0].run_id)


async def test_a_group_whose_reads_fail_has_each_event_read_alone(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine.write("segments", SEGMENTS)
    engine.write("buyer_thanks", _journey("buyer_thanks", "buyers"))

    async def broken(people: Any, lookup: Any = None) -> set[str]:
        raise RuntimeError("the group's read failed")

    monkeypatch.setattr(engine.client.store.segments, "changed", broken)
    first = await asyncio.gather(*(engine.client.track(f"rf-{i}", "purchase") for i in range(5)))
    second = await asyncio.gather(*(engine.client.track(f"rf-{i}", "purchase") for i in range(5)))
    assert all(r.recorded and r.started == [] for r in first)
    # each read its own segments instead: every second purchase still enters buyers
    assert [[h.journey for h in r.started] for r in second] == [["buyer_thanks"]] * 5
    for r in second:
        await engine.until_done(r.started[0].run_id)


async def test_a_batch_applies_each_person_s_tracks_in_order(engine: Engine) -> None:
    ops: list[dict[str, Any]] = []
    for n in range(4):
        for person in ("or-a", "or-b", "or-c"):
            ops.append({"type": "track", "id": person, "event": "step", "data": {"n": n}})
    ops.insert(5, {"type": "identify", "id": "or-b", "attributes": {"plan": "pro"}})
    results = await engine.client.batch(ops)
    assert [r.index for r in results] == list(range(len(ops)))
    assert all(r.ok for r in results)
    for person in ("or-a", "or-b", "or-c"):
        events = await engine.client.store.events.of_person(person)  # newest first
        assert [e["data"]["n"] for e in reversed(events)] == [0, 1, 2, 3]
