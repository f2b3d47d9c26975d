"""Concurrent writes never lose data: 50 writers at once per case, on SQLite and PostgreSQL.

Each case starts its writers together (``asyncio.gather`` over the store's connection
pool, or over HTTP against a real uvicorn server) and then checks the end state: every
write is there, nothing failed, and no row is left for a person who does not exist.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter
from sqlalchemy import func, select
from temporalio.client import Client

from definitions.conditions import Condition
from journeys.client import JourneysClient
from journeys.devserver import DevServer
from journeys.sinks import MailCatcher, WebhookSink
from journeys.store import MessageRecord, RunRecord, Store, TriggerRecord
from journeys.store import tables as t
from tests.conftest import engine_settings
from tests.helpers import Engine, copy_examples
from tests.test_server import API_KEY, SITE_ID, Api, serve

WRITERS = 50
CONDITION: TypeAdapter[Condition] = TypeAdapter(Condition)


async def together(calls: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Run the calls at once; every one must succeed."""
    return list(await asyncio.gather(*(call() for call in calls)))


async def count(store: Store, table: Any, *where: Any) -> int:
    async with store.db.engine.connect() as conn:
        return int(
            (await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one()
        )


async def orphans(store: Store, person: str) -> dict[str, int]:
    """Rows about ``person`` in each table, when ``person`` has no profile (else nothing)."""
    if await store.profiles.get(person) is not None:
        return {}
    found = {}
    for table in (t.events, t.devices, t.segment_members, t.segment_state, t.runs):
        rows = await count(store, table, table.c.recipient_id == person)
        if rows:
            found[table.name] = rows
    return found


# -- profiles -------------------------------------------------------------------------------


async def test_concurrent_identifies_of_a_new_person_keep_every_attribute(store: Store) -> None:
    def write(i: int) -> Callable[[], Awaitable[None]]:
        attributes: dict[str, Any] = {f"a{i}": i}
        if i == 7:
            attributes["email"] = "  New.Person@Example.COM "
        return lambda: store.profiles.identify("cc-new", attributes)

    await together([write(i) for i in range(WRITERS)])
    profile = await store.profiles.get("cc-new")
    assert profile is not None
    assert {k: v for k, v in profile.items() if k.startswith("a")} == {
        f"a{i}": i for i in range(WRITERS)
    }
    assert await store.profiles.find_by_email("new.person@example.com") == "cc-new"


async def test_concurrent_identifies_keep_created_at_and_the_email_column(store: Store) -> None:
    await store.profiles.identify("cc-kept", {"email": "first@example.com"})
    created = await store.profiles.created_at("cc-kept")
    await together(
        [
            (lambda i=i: store.profiles.upsert([("cc-kept", {f"b{i}": [i], "nested": {"i": i}})]))
            for i in range(WRITERS)
        ]
    )
    profile = await store.profiles.get("cc-kept")
    assert profile is not None
    assert all(profile[f"b{i}"] == [i] for i in range(WRITERS))
    assert profile["nested"] in [{"i": i} for i in range(WRITERS)]  # shallow: replaced whole
    assert await store.profiles.created_at("cc-kept") == created
    # no email given: kept
    assert await store.profiles.find_by_email("FIRST@example.com") == "cc-kept"
    await store.profiles.identify("cc-kept", {"email": None})
    assert await store.profiles.find_by_email("first@example.com") is None  # cleared with it


async def test_concurrent_batches_in_opposite_orders_neither_deadlock_nor_lose(
    store: Store,
) -> None:
    people = [f"cc-batch{n}" for n in range(5)]

    def write(i: int) -> Callable[[], Awaitable[None]]:
        order = people if i % 2 else list(reversed(people))
        return lambda: store.profiles.upsert([(p, {f"w{i}": True}) for p in order])

    await together([write(i) for i in range(WRITERS)])
    for person in people:
        profile = await store.profiles.get(person)
        assert profile is not None and sum(k.startswith("w") for k in profile) == WRITERS


async def test_concurrent_first_events_of_a_new_person(store: Store) -> None:
    recorded = await together(
        [
            (lambda i=i: store.events.record("cc-first", "opened", {"n": i}, create_person=True))
            for i in range(WRITERS)
        ]
    )
    assert recorded == [True] * WRITERS
    assert await store.events.count("cc-first", "opened") == WRITERS
    assert await store.profiles.get("cc-first") == {"id": "cc-first"}


async def test_identify_racing_delete_ends_consistent(store: Store) -> None:
    """Identify and delete_person at once: no error, and each identify all there or all gone.

    Each identify writes an attribute, a device and an anonymous visitor's event of its
    own; it is atomic when, in the end, the three are either all there or all gone. One
    that began after every delete had returned is there; one that returned before some
    delete began is gone.
    """
    person, rng = "cc-race", random.Random(9)
    for i in range(WRITERS):
        await store.events.record(None, "visited", anonymous_id=f"anon-{i}")
    kinds = ["identify"] * 40 + ["delete"] * 10
    rng.shuffle(kinds)
    spans: dict[int, tuple[float, float]] = {}

    async def one(i: int, kind: str) -> None:
        began = time.monotonic()
        if kind == "identify":
            await store.profiles.identify(
                person,
                {f"k{i}": i, "devices": [{"token": f"tok-{i}", "platform": "ios"}]},
                anonymous_id=f"anon-{i}",
            )
        else:
            await store.profiles.delete(person)
        spans[i] = (began, time.monotonic())

    await together([(lambda i=i, k=k: one(i, k)) for i, k in enumerate(kinds)])
    profile = await store.profiles.get(person) or {}
    tokens = {d["token"] for d in profile.get("devices", [])}
    deletes = [spans[i] for i, k in enumerate(kinds) if k == "delete"]
    for i, kind in enumerate(kinds):
        if kind != "identify":
            continue
        attached = await count(
            store,
            t.events,
            t.events.c.anonymous_id == f"anon-{i}",
            t.events.c.recipient_id == person,
        )
        left_anonymous = await count(
            store,
            t.events,
            t.events.c.anonymous_id == f"anon-{i}",
            t.events.c.recipient_id.is_(None),
        )
        there = f"k{i}" in profile
        assert left_anonymous == 0
        assert (f"tok-{i}" in tokens) is there and bool(attached) is there, i
        if all(spans[i][0] > end for _, end in deletes):
            assert there, f"identify {i} began after every delete returned"
        if any(spans[i][1] < begin for begin, _ in deletes):
            assert not there, f"identify {i} returned before a delete began"
    assert await orphans(store, person) == {}


async def test_add_device_racing_delete_leaves_no_device_without_a_person(store: Store) -> None:
    calls = [
        (lambda i=i: store.profiles.add_device("cc-dr", f"t{i}", "android")) for i in range(WRITERS)
    ]
    calls += [(lambda: store.profiles.delete("cc-dr")) for _ in range(10)]
    random.Random(3).shuffle(calls)
    await together(calls)
    assert await orphans(store, "cc-dr") == {}


async def test_merge_racing_identify_of_either_person_loses_nothing(store: Store) -> None:
    await store.profiles.identify("cc-primary", {"p": 1})
    await store.profiles.identify("cc-secondary", {"s": 1})
    calls = [
        (lambda i=i: store.profiles.identify("cc-primary", {f"p{i}": i})) for i in range(WRITERS)
    ]
    calls.append(lambda: store.profiles.merge("cc-primary", "cc-secondary"))
    random.Random(5).shuffle(calls)
    await together(calls)
    profile = await store.profiles.get("cc-primary")
    assert profile is not None and profile["s"] == 1 and profile["p"] == 1
    assert all(profile[f"p{i}"] == i for i in range(WRITERS))


# -- devices, preferences, suppressions ------------------------------------------------------


async def test_concurrent_add_device_of_one_token(store: Store) -> None:
    await together(
        [
            (
                lambda i=i: store.profiles.add_device(
                    "cc-device", "same-token", "ios", {f"seen{i}": True}
                )
            )
            for i in range(WRITERS)
        ]
    )
    profile = await store.profiles.get("cc-device")
    assert profile is not None
    [device] = profile["devices"]
    assert device["token"] == "same-token" and device["platform"] == "ios"
    assert sum(k.startswith("seen") for k in device) == WRITERS  # attributes merge too


async def test_concurrent_preference_updates_of_different_keys(store: Store) -> None:
    def write(i: int) -> Callable[[], Awaitable[Any]]:
        if i == 0:
            return lambda: store.consent.update_preferences("cc-prefs", unsubscribed=True)
        if i % 5 == 0:
            return lambda: store.consent.update_preferences("cc-prefs", channels={f"c{i}": True})
        return lambda: store.consent.update_preferences("cc-prefs", topics={f"t{i}": False})

    await together([write(i) for i in range(WRITERS)])
    prefs = await store.consent.preferences("cc-prefs")
    assert prefs.unsubscribed is True
    assert prefs.channels == {f"c{i}": True for i in range(5, WRITERS, 5)}
    assert prefs.topics == {f"t{i}": False for i in range(1, WRITERS) if i % 5}


async def test_concurrent_suppress_of_the_same_value(store: Store) -> None:
    await together(
        [
            (lambda i=i: store.consent.suppress("address", "gone@example.com", f"bounce {i}"))
            for i in range(WRITERS)
        ]
    )
    assert await count(store, t.suppressions, t.suppressions.c.value == "gone@example.com") == 1
    reason = await store.consent.suppression("x", ["gone@example.com"])
    assert reason is not None and reason.startswith("address: bounce ")


# -- segments ---------------------------------------------------------------------------------


async def test_concurrent_segment_entries_are_reported_once(store: Store) -> None:
    await store.profiles.identify("cc-segment", {"plan": "pro"})
    segments = {"pros": CONDITION.validate_python({"attribute": "plan", "value": "pro"})}
    entered = await together(
        [(lambda: store.segments.entered("cc-segment", segments)) for _ in range(WRITERS)]
    )
    assert [e for e in entered if e] == [{"pros"}]


async def test_concurrent_manual_members_and_segment_definitions(store: Store) -> None:
    await together(
        [
            (lambda i=i: store.segments.add_members("cc-vip", ["cc-m1", f"cc-m{i}"]))
            for i in range(WRITERS)
        ]
        + [
            (lambda i=i: store.segments.save("cc-vip", "manual", None, f"take {i}"))
            for i in range(WRITERS)
        ]
    )
    assert await count(store, t.segment_members, t.segment_members.c.segment == "cc-vip") == WRITERS
    assert await count(store, t.segments, t.segments.c.name == "cc-vip") == 1
    assert all([await store.profiles.get(f"cc-m{i}") for i in range(WRITERS)])  # created


# -- runs, messages, cohorts ------------------------------------------------------------------


async def test_concurrent_runs_and_messages_are_recorded_once(store: Store) -> None:
    now = datetime.now(UTC)
    run = RunRecord("j/cc-rm", "run-rm", "j", "cc-rm", "trg_rm", now)

    def message(state: str) -> MessageRecord:
        return MessageRecord("msg-rm", "j/cc-rm", "run-rm", "s", "cc-rm", "email", state, "a@x.io")

    await together(
        [(lambda: store.runs.add(run)) for _ in range(WRITERS)]
        + [(lambda: store.messages.save(message("queued"))) for _ in range(WRITERS)]
        + [(lambda: store.messages.add([message("queued")])) for _ in range(WRITERS)]
    )
    assert [r.run_id for r in await store.runs.of_person("cc-rm")] == ["run-rm"]
    await store.messages.save(message("sent"))
    await together([(lambda: store.messages.add([message("queued")])) for _ in range(WRITERS)])
    saved = await store.messages.get("msg-rm")
    assert saved is not None and saved.state == "sent"  # add_messages keeps what is there


async def test_concurrent_cohort_writes(store: Store) -> None:
    now = datetime.now(UTC)
    await store.runs.save_trigger(TriggerRecord("trg_cc", "cj", {}, now))
    await store.runs.save_trigger(TriggerRecord("trg_cd", "cj", {}, now))
    people = [(f"cc-cohort{i}", None) for i in range(20)]
    await together([(lambda: store.members.add("trg_cc", people)) for _ in range(WRITERS)])
    await store.members.add("trg_cd", people)
    assert await store.members.count("trg_cc") == 20
    assert (
        await count(store, t.trigger_recipients, t.trigger_recipients.c.trigger_id == "trg_cc")
        == 20
    )

    def claim(trigger: str) -> Callable[[], Awaitable[Any]]:
        return lambda: store.members.claim(trigger, "cj", f"cj/{trigger}/cohort-1", -1, 100)

    triggers = ["trg_cc" if i % 2 else "trg_cd" for i in range(WRITERS)]
    claims = await together([claim(trigger) for trigger in triggers])
    members: dict[str, set[tuple[tuple[str, str], ...]]] = {"trg_cc": set(), "trg_cd": set()}
    for trigger, (claimed, _, _) in zip(triggers, claims, strict=True):
        members[trigger].add(tuple(sorted((rid, run) for rid, run, _ in claimed)))
    # A retried claim of a cohort gets the same members and run ids; of two triggers of
    # one journey, one cohort has everyone and the other nobody.
    assert all(len(found) == 1 for found in members.values())
    sizes = sorted(len(next(iter(found))) for found in members.values())
    assert sizes == [0, 20]
    assert await count(store, t.runs, t.runs.c.journey == "cj", t.runs.c.closed == 0) == 20


# -- through the HTTP API ---------------------------------------------------------------------


@pytest.fixture
async def api_on(
    store_url: str,
    temporal_server: DevServer,
    temporal: Client,
    tmp_path: Path,
    mail: MailCatcher,
    hooks: WebhookSink,
) -> AsyncIterator[Api]:
    """The HTTP API on a real uvicorn server, over a store on each backend."""
    settings = engine_settings(temporal_server.address, store_url, mail.port)
    directory = copy_examples(tmp_path / "journeys")
    async with await JourneysClient.connect(settings, directory=directory) as client:
        engine = Engine(client, temporal, settings, directory, mail, hooks)
        async for served in serve(engine, tmp_path, rate_limit=100_000):
            yield served


async def test_concurrent_identifies_over_http_keep_every_attribute(api_on: Api) -> None:
    async with api_on.native() as native, api_on.basic(SITE_ID, API_KEY) as track:
        answers = await together(
            [
                (lambda i=i: native.put("/v1/people/cc-hn", json={"attributes": {f"n{i}": i}}))
                for i in range(WRITERS)
            ]
            + [
                (lambda i=i: track.put("/api/v1/customers/cc-ht", json={f"t{i}": i}))
                for i in range(WRITERS)
            ]
        )
        assert sorted({a.status_code for a in answers}) == [200]
        for person, prefix in (("cc-hn", "n"), ("cc-ht", "t")):
            got = (await native.get(f"/v1/people/{person}")).json()["attributes"]
            assert got == {f"{prefix}{i}": i for i in range(WRITERS)}


async def test_concurrent_first_events_over_http(api_on: Api) -> None:
    async with api_on.basic(SITE_ID, API_KEY) as track:
        answers = await together(
            [
                (
                    lambda i=i: track.post(
                        "/api/v1/customers/cc-hf/events", json={"name": "opened", "data": {"n": i}}
                    )
                )
                for i in range(WRITERS)
            ]
        )
    assert sorted({a.status_code for a in answers}) == [200]
    assert await api_on.engine.client.store.events.count("cc-hf", "opened") == WRITERS


async def test_identify_racing_delete_over_http(api_on: Api) -> None:
    store = api_on.engine.client.store
    for i in range(WRITERS):
        await store.events.record(None, "visited", anonymous_id=f"cc-hd-{i}")

    def identify(i: int) -> Callable[[], Awaitable[Any]]:
        body = {"attributes": {f"d{i}": i}, "anonymous_id": f"cc-hd-{i}"}
        return lambda: native.put("/v1/people/cc-hd", json=body)

    async with api_on.native() as native:
        calls = [identify(i) for i in range(WRITERS)]
        calls += [(lambda: native.delete("/v1/people/cc-hd")) for _ in range(10)]
        random.Random(11).shuffle(calls)
        answers = await together(calls)
    assert sorted({a.status_code for a in answers}) == [200]
    assert await orphans(store, "cc-hd") == {}
    profile = await store.profiles.get("cc-hd") or {}
    for i in range(WRITERS):  # each identify: its attribute and its events, or neither
        events = await count(store, t.events, t.events.c.anonymous_id == f"cc-hd-{i}")
        assert bool(events) is (f"d{i}" in profile), i
