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
    await store.upsert_profiles([("p1", {"plan": "free", "email": "a@example.com"})])
    await store.upsert_profiles([("p1", {"plan": "pro"}), ("p2", {})])
    assert await store.get_profile("p1") == {"id": "p1", "plan": "pro", "email": "a@example.com"}
    assert await store.get_profile("p2") == {"id": "p2"}
    assert await store.get_profile("nobody") is None


async def test_migrating_twice_is_harmless(store: Store) -> None:
    await store.migrate()
    await store.upsert_profiles([("m", {"a": 1})])
    assert await store.get_profile("m") == {"id": "m", "a": 1}


async def test_events_counted_in_time_frames(store: Store) -> None:
    now = datetime.now(UTC)
    await store.record_event("e1", "login", {}, at=now - timedelta(days=10))
    await store.record_event("e1", "login", {"n": 2}, at=now)
    assert await store.event_count("e1", "login") == 2
    assert await store.event_count("e1", "login", since=now - timedelta(days=1)) == 1
    assert await store.event_count("e1", "logout") == 0


async def test_triggers_by_idempotency_key(store: Store) -> None:
    now = datetime.now(UTC)
    first = await store.save_trigger(TriggerRecord("trg_1", "j", {}, now, "key-1"))
    again = await store.save_trigger(TriggerRecord("trg_2", "j", {}, now, "key-1"))
    assert again.id == first.id == "trg_1"
    assert await store.get_trigger("trg_2") is None


async def test_runs_and_messages(store: Store) -> None:
    now = datetime.now(UTC)
    run = RunRecord("j/r1", "run-a", "j", "r1", "trg_1", now)
    await store.add_run(run)
    await store.add_run(run)
    assert [r.run_id for r in await store.open_runs("r1")] == ["run-a"]
    await store.mark_closed("j/r1", "run-a")
    assert await store.open_runs("r1") == []
    assert (await store.find_run("run-a")).closed  # type: ignore[union-attr]
    message = MessageRecord("m1", "j/r1", "run-a", "s", "r1", "email", "queued", "a@x.io")
    await store.save_message(message)
    await store.save_message(
        MessageRecord(
            "m1", "j/r1", "run-a", "s", "r1", "email", "sent", "a@x.io", {"provider_id": "p"}
        )
    )
    saved = await store.get_message("m1")
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
    await store.upsert_profiles(
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
    await store.record_event("c1", "login", {}, at=datetime.now(UTC) - timedelta(days=3))
    assert await evaluate(CONDITION.validate_python(condition), "c1", store) is expected


async def test_people_lookups_and_pages(store: Store) -> None:
    await store.upsert_profiles(
        [(f"lp{i}", {"email": f"LP{i}@Example.com", "n": i % 2}) for i in range(5)]
    )
    assert await store.find_by_email("lp3@example.com") == "lp3"
    page = await store.list_people(limit=2, after="lo")  # the database is shared: skip others
    assert page.ids == ["lp0", "lp1"] and page.next == "lp1"
    assert (await store.list_people(after="lp3", limit=1)).ids == ["lp4"]
    assert (await store.list_people(attribute=("n", 1))).ids == ["lp1", "lp3"]
    assert (await store.list_people(email="LP2@example.com")).ids == ["lp2"]


async def test_events_are_deduplicated_and_anonymous_ones_attach(store: Store) -> None:
    assert await store.record_event("ev", "x", event_id="e-1") is not None
    assert await store.record_event("ev", "x", event_id="e-1") is None
    await store.record_event(None, "seen", anonymous_id="anon-9")
    await store.record_event(None, "seen", anonymous_id="anon-9")
    assert await store.attach_anonymous("ev", "anon-9") == 2
    assert await store.event_count("ev", "seen") == 2
    assert await store.attach_anonymous("ev", "anon-9") == 0


async def test_merge_and_delete_people(store: Store) -> None:
    await store.upsert_profiles([("mp", {"a": 1}), ("ms", {"a": 2, "b": 3})])
    await store.record_event("ms", "login")
    await store.add_device("ms", "tok", "ios")
    await store.add_device("mp", "tok", "ios")
    await store.add_members("list", ["ms"])
    await store.update_preferences("ms", topics={"news": False})
    await store.merge_people("mp", "ms")
    merged = await store.get_profile("mp")
    assert merged is not None and merged["a"] == 1 and merged["b"] == 3
    assert [d["token"] for d in merged["devices"]] == ["tok"]
    assert await store.event_count("mp", "login") == 1
    assert await store.is_member("list", "mp")
    assert (await store.get_preferences("mp")).topics == {"news": False}
    assert await store.get_profile("ms") is None
    assert await store.delete_person("mp") is True
    assert await store.get_profile("mp") is None
    assert await store.event_count("mp", "login") == 0
    assert not await store.is_member("list", "mp")
    assert await store.delete_person("mp") is False


async def test_segment_entry_is_a_change_from_out_to_in(store: Store) -> None:
    tracked = {n: CONDITION.validate_python({"attribute": n, "value": True}) for n in "abc"}
    assert await store.entered("se", tracked) == set()  # no such person: nothing recorded
    await store.upsert_profiles([("se", {"a": True, "b": True})])
    assert await store.entered("se", tracked) == {"a", "b"}
    assert await store.entered("se", tracked) == set()
    await store.upsert_profiles([("se", {"a": False})])
    assert await store.entered("se", tracked) == set()  # left a
    await store.upsert_profiles([("se", {"a": True, "z": True})])
    assert await store.entered("se", tracked) == {"a"}
    assert await store.last_run_started("j", "se") is None
    await store.add_run(RunRecord("j/se", "r1", "j", "se", "trg", datetime.now(UTC)))
    assert await store.last_run_started("j", "se") is not None


async def test_migration_moves_devices_out_of_the_attributes(empty_url: str) -> None:
    store = await Store.open(empty_url, migrate=False)
    await store.migrate("0004")
    now = datetime.now(UTC)
    inline = [{"token": "a", "platform": "ios", "app": "1.2"}, "b", 42, {"no": "token"}, "b"]
    async with store.writer.begin() as conn:
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
    d1 = await store.get_profile("d1")
    assert d1 == {
        "id": "d1",
        "plan": "pro",
        "devices": [
            {"token": "a", "platform": "android"},  # the table's own row is kept
            {"token": "b", "platform": "unknown"},
        ],
    }
    assert await store.get_profile("d2") == {"id": "d2"}
    assert await store.get_profile("d3") == {"id": "d3", "plan": "free"}
    assert await store.get_profile("d4") == {"id": "d4"}
    await store.close()


async def test_devices_given_with_a_profile_are_registered(store: Store) -> None:
    await store.add_device("dg", "known", "ios", {"app": "1.0"})
    await store.upsert_profiles(
        [("dg", {"plan": "pro", "devices": ["known", {"token": "new", "platform": "android"}]})]
    )
    profile = await store.get_profile("dg")
    assert profile == {
        "id": "dg",
        "plan": "pro",
        "devices": [
            {"token": "known", "platform": "ios", "app": "1.0"},  # platform unknown: kept
            {"token": "new", "platform": "android"},
        ],
    }
    await store.remove_devices("dg", ["known", "new"])
    assert await store.get_profile("dg") == {"id": "dg", "plan": "pro"}
    with pytest.raises(InvalidRequestError, match=r"devices of dg\[0\]: expected a token"):
        await store.upsert_profiles([("dg", {"plan": "free", "devices": [7]})])
    assert (await store.get_profile("dg") or {})["plan"] == "pro"  # nothing written


async def test_migrating_logs_nothing_at_info(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every command and worker start migrates the store: alembic's progress is not news."""
    import logging

    caplog.set_level(logging.INFO)
    store = await Store.open(f"sqlite:///{tmp_path}/fresh.db")
    await store.close()
    assert [r.getMessage() for r in caplog.records if r.name.startswith("alembic")] == []
