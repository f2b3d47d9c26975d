"""The store and condition evaluation, on SQLite and on PostgreSQL."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from pydantic import TypeAdapter

from activities.conditions import evaluate
from definitions.conditions import Condition
from definitions.errors import InvalidRequestError
from journeys.store import MessageRecord, RunRecord, Store, TriggerRecord, normalise_url
from journeys.store import tables as t
from tests.conftest import POSTGRES

CONDITION: TypeAdapter[Condition] = TypeAdapter(Condition)


@pytest.fixture
async def empty_url(store_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """A database of its own, with no schema yet (on each backend)."""
    if store_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path}/empty.db"
        return
    name = f"journeys_empty_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(POSTGRES)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES.rsplit('/', 1)[0]}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def test_urls_get_async_drivers() -> None:
    assert normalise_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    assert normalise_url("postgresql://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert normalise_url("postgresql+asyncpg://u@h/db") == "postgresql+asyncpg://u@h/db"


async def test_profiles_merge(store: Store) -> None:
    await store.profiles.upsert([("p1", {"plan": "free", "email": "a@example.com"})])
    await store.profiles.upsert([("p1", {"plan": "pro"}), ("p2", {})])
    assert await store.profiles.get("p1") == {"id": "p1", "plan": "pro", "email": "a@example.com"}
    assert await store.profiles.get("p2") == {"id": "p2"}
    assert await store.profiles.get("nobody") is None


async def test_migrating_twice_is_harmless(store: Store) -> None:
    await store.migrate()
    await store.profiles.upsert([("m", {"a": 1})])
    assert await store.profiles.get("m") == {"id": "m", "a": 1}


async def test_events_counted_in_time_frames(store: Store) -> None:
    now = datetime.now(UTC)
    await store.events.record("e1", "login", {}, at=now - timedelta(days=10))
    await store.events.record("e1", "login", {"n": 2}, at=now)
    assert await store.events.count("e1", "login") == 2
    assert await store.events.count("e1", "login", since=now - timedelta(days=1)) == 1
    assert await store.events.count("e1", "logout") == 0


async def test_triggers_by_idempotency_key(store: Store) -> None:
    now = datetime.now(UTC)
    first = await store.runs.save_trigger(TriggerRecord("trg_1", "j", {}, now, "key-1"))
    again = await store.runs.save_trigger(TriggerRecord("trg_2", "j", {}, now, "key-1"))
    assert again.id == first.id == "trg_1"
    assert await store.runs.get_trigger("trg_2") is None


async def test_runs_and_messages(store: Store) -> None:
    now = datetime.now(UTC)
    run = RunRecord("j/r1", "run-a", "j", "r1", "trg_1", now)
    await store.runs.add(run)
    await store.runs.add(run)
    assert [r.run_id for r in await store.runs.open_of("r1")] == ["run-a"]
    await store.runs.mark_closed("j/r1", "run-a")
    assert await store.runs.open_of("r1") == []
    assert (await store.runs.get("run-a")).closed  # type: ignore[union-attr]
    message = MessageRecord("m1", "j/r1", "run-a", "s", "r1", "email", "queued", "a@x.io")
    await store.messages.save(message)
    await store.messages.save(
        MessageRecord(
            "m1", "j/r1", "run-a", "s", "r1", "email", "sent", "a@x.io", {"provider_id": "p"}
        )
    )
    saved = await store.messages.get("m1")
    assert saved is not None and saved.state == "sent" and saved.detail == {"provider_id": "p"}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"attribute": "plan", "value": "pro"}, True),
        ({"attribute": "plan", "op": "ne", "value": "pro"}, False),
        ({"attribute": "spend", "op": "gt", "value": 99}, True),
        ({"attribute": "spend", "op": "lte", "value": 99}, False),
        ({"attribute": "country", "op": "in", "value": ["fr", "de"]}, True),
        ({"attribute": "tags", "op": "contains", "value": "beta"}, True),
        ({"attribute": "address.city", "value": "Lyon"}, True),
        ({"attribute": "phone", "op": "exists"}, False),
        ({"attribute": "plan", "op": "exists"}, True),
        ({"attribute": "spend", "op": "gt", "value": "a string"}, False),
        ({"event": "login"}, True),
        ({"event": "login", "within": "1d"}, False),
        ({"event": "purchase", "happened": False}, True),
        ({"all": [{"attribute": "plan", "value": "pro"}, {"event": "login"}]}, True),
        ({"any": [{"attribute": "plan", "value": "free"}, {"event": "purchase"}]}, False),
        ({"not": {"attribute": "plan", "value": "free"}}, True),
    ],
)
async def test_conditions(store: Store, condition: dict[str, object], expected: bool) -> None:
    await store.profiles.upsert(
        [
            (
                "c1",
                {
                    "plan": "pro",
                    "spend": 100,
                    "country": "fr",
                    "tags": ["beta", "early"],
                    "address": {"city": "Lyon"},
                },
            )
        ]
    )
    await store.events.record("c1", "login", {}, at=datetime.now(UTC) - timedelta(days=3))
    assert await evaluate(CONDITION.validate_python(condition), "c1", store) is expected


async def test_people_lookups_and_pages(store: Store) -> None:
    await store.profiles.upsert(
        [(f"lp{i}", {"email": f"LP{i}@Example.com", "n": i % 2}) for i in range(5)]
    )
    assert await store.profiles.find_by_email("lp3@example.com") == "lp3"
    page = await store.profiles.page(limit=2, after="lo")  # the database is shared: skip others
    assert page.ids == ["lp0", "lp1"] and page.next == "lp1"
    assert (await store.profiles.page(after="lp3", limit=1)).ids == ["lp4"]
    assert (await store.profiles.page(attribute=("n", 1))).ids == ["lp1", "lp3"]
    assert (await store.profiles.page(email="LP2@example.com")).ids == ["lp2"]


async def test_events_are_deduplicated_and_anonymous_ones_attach(store: Store) -> None:
    assert await store.events.record("ev", "x", event_id="e-1") is True
    assert await store.events.record("ev", "x", event_id="e-1") is False
    await store.events.record(None, "seen", anonymous_id="anon-9")
    await store.events.record(None, "seen", anonymous_id="anon-9")
    assert await store.profiles.attach_anonymous("ev", "anon-9") == 2
    assert await store.events.count("ev", "seen") == 2
    assert await store.profiles.attach_anonymous("ev", "anon-9") == 0


async def test_merge_and_delete_people(store: Store) -> None:
    await store.profiles.upsert([("mp", {"a": 1}), ("ms", {"a": 2, "b": 3})])
    await store.events.record("ms", "login")
    await store.profiles.add_device("ms", "tok", "ios")
    await store.profiles.add_device("mp", "tok", "ios")
    await store.segments.add_members("list", ["ms"])
    await store.consent.update_preferences("ms", topics={"news": False})
    await store.profiles.merge("mp", "ms")
    merged = await store.profiles.get("mp")
    assert merged is not None and merged["a"] == 1 and merged["b"] == 3
    assert [d["token"] for d in merged["devices"]] == ["tok"]
    assert await store.events.count("mp", "login") == 1
    assert await store.segments.is_member("list", "mp")
    assert (await store.consent.preferences("mp")).topics == {"news": False}
    assert await store.profiles.get("ms") is None
    assert await store.profiles.delete("mp") is True
    assert await store.profiles.get("mp") is None
    assert await store.events.count("mp", "login") == 0
    assert not await store.segments.is_member("list", "mp")
    assert await store.profiles.delete("mp") is False


async def test_segment_entry_is_a_change_from_out_to_in(store: Store) -> None:
    tracked = {n: CONDITION.validate_python({"attribute": n, "value": True}) for n in "abc"}
    assert await store.segments.entered("se", tracked) == set()  # no such person: nothing recorded
    await store.profiles.upsert([("se", {"a": True, "b": True})])
    assert await store.segments.entered("se", tracked) == {"a", "b"}
    assert await store.segments.entered("se", tracked) == set()
    await store.profiles.upsert([("se", {"a": False})])
    assert await store.segments.entered("se", tracked) == set()  # left a
    await store.profiles.upsert([("se", {"a": True, "z": True})])
    assert await store.segments.entered("se", tracked) == {"a"}
    assert await store.runs.last_started("j", "se") is None
    await store.runs.add(RunRecord("j/se", "r1", "j", "se", "trg", datetime.now(UTC)))
    assert await store.runs.last_started("j", "se") is not None


async def test_migration_moves_devices_out_of_the_attributes(empty_url: str) -> None:
    store = await Store.open(empty_url, migrate=False)
    await store.migrate("0004")
    now = datetime.now(UTC)
    inline = [{"token": "a", "platform": "ios", "app": "1.2"}, "b", 42, {"no": "token"}, "b"]
    async with store.db.writer.begin() as conn:
        await conn.execute(
            t.profiles.insert(),
            [
                {"id": pid, "attributes": a, "created_at": now, "updated_at": now, "email": None}
                for pid, a in [
                    ("d1", {"plan": "pro", "devices": inline}),
                    ("d2", {"devices": []}),
                    ("d3", {"plan": "free"}),
                    ("d4", {"devices": "not a list"}),
                ]
            ],
        )
        await conn.execute(
            t.devices.insert().values(
                recipient_id="d1", token="a", platform="android", attributes={}, created_at=now
            )
        )
    await store.migrate()
    d1 = await store.profiles.get("d1")
    assert d1 == {
        "id": "d1",
        "plan": "pro",
        "devices": [
            {"token": "a", "platform": "android"},  # the table's own row is kept
            {"token": "b", "platform": "unknown"},
        ],
    }
    assert await store.profiles.get("d2") == {"id": "d2"}
    assert await store.profiles.get("d3") == {"id": "d3", "plan": "free"}
    assert await store.profiles.get("d4") == {"id": "d4"}
    await store.close()


async def test_devices_given_with_a_profile_are_registered(store: Store) -> None:
    await store.profiles.add_device("dg", "known", "ios", {"app": "1.0"})
    await store.profiles.upsert(
        [("dg", {"plan": "pro", "devices": ["known", {"token": "new", "platform": "android"}]})]
    )
    profile = await store.profiles.get("dg")
    assert profile == {
        "id": "dg",
        "plan": "pro",
        "devices": [
            {"token": "known", "platform": "ios", "app": "1.0"},  # platform unknown: kept
            {"token": "new", "platform": "android"},
        ],
    }
    await store.profiles.remove_devices("dg", ["known", "new"])
    assert await store.profiles.get("dg") == {"id": "dg", "plan": "pro"}
    with pytest.raises(InvalidRequestError, match=r"devices of dg\[0\]: expected a token"):
        await store.profiles.upsert([("dg", {"plan": "free", "devices": [7]})])
    assert (await store.profiles.get("dg") or {})["plan"] == "pro"  # nothing written


async def test_migrating_logs_nothing_at_info(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every command and worker start migrates the store: alembic's progress is not news."""
    import logging

    caplog.set_level(logging.INFO)
    store = await Store.open(f"sqlite:///{tmp_path}/fresh.db")
    await store.close()
    assert [r.getMessage() for r in caplog.records if r.name.startswith("alembic")] == []
