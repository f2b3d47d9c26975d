"""The store and condition evaluation, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import TypeAdapter

from activities.conditions import evaluate
from definitions.conditions import Condition
from journeys.store import MessageRecord, RunRecord, Store, TriggerRecord, normalise_url

CONDITION: TypeAdapter[Condition] = TypeAdapter(Condition)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(store_url)
    yield opened
    await opened.close()


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
