"""Segment rules in SQL (and in the evaluate activity) against hand-computed answers.

A generated data set of 3,000 people with mixed attribute kinds (text, numbers, booleans,
lists, nested objects, missing values, numbers written as text) and events is loaded into
SQLite and PostgreSQL; each rule's members must equal what a plain Python predicate,
written by hand for that rule, says.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter
from sqlalchemy import insert

from activities.conditions import evaluate
from definitions.conditions import Condition, SegmentCondition
from journeys.store import Store
from journeys.store import tables as t

NOW = datetime.now(UTC)
PEOPLE = 3000
CONDITION: TypeAdapter[Any] = TypeAdapter(Condition)


def generate() -> tuple[dict[str, dict[str, Any]], dict[str, list[tuple[str, datetime]]]]:
    rng = random.Random(20261122)
    people: dict[str, dict[str, Any]] = {}
    events: dict[str, list[tuple[str, datetime]]] = {}
    for i in range(PEOPLE):
        pid = f"p{i:05d}"
        person: dict[str, Any] = {}
        plan = rng.choice(["free", "pro", "team", None, "missing"])
        if plan != "missing":
            person["plan"] = plan
        spend = rng.choice([rng.randint(0, 500), rng.uniform(0, 500), "120", True, "missing"])
        if spend != "missing":
            person["spend"] = spend
        if rng.random() < 0.8:
            person["country"] = rng.choice(["fr", "de", "us", "gb", "jp", "Fr"])
        if rng.random() < 0.7:
            person["tags"] = rng.sample(
                ["beta", "early", "vip", "churn-risk", 7, True], rng.randint(0, 3)
            )
        if rng.random() < 0.6:
            person["address"] = {"city": rng.choice(["Lyon", "Paris", "Berlin", "lyon"])}
        if rng.random() < 0.5:
            person["name"] = rng.choice(["Ana", "Émile", "zoë", "Bob", "beta tester"])
        if rng.random() < 0.5:
            person["verified"] = rng.choice([True, False, 1, "true"])
        people[pid] = person
        happened = []
        for _ in range(rng.choice([0, 0, 1, 2, 4])):
            happened.append(("login", NOW - timedelta(days=rng.uniform(0, 60))))
        for _ in range(rng.choice([0, 0, 0, 1, 3, 5])):
            happened.append(("purchase", NOW - timedelta(days=rng.uniform(0, 90))))
        events[pid] = happened
    return people, events


PEOPLE_DATA, EVENTS_DATA = generate()
MISSING = object()


def get(person: dict[str, Any], path: str) -> Any:
    value: Any = person
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return MISSING
        value = value[key]
    return value


def is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def logins(pid: str, days: float | None = None) -> int:
    return sum(
        1
        for name, at in EVENTS_DATA[pid]
        if name == "login" and (days is None or at >= NOW - timedelta(days=days))
    )


def purchases(pid: str) -> int:
    return sum(1 for name, _ in EVENTS_DATA[pid] if name == "purchase")


Rule = tuple[str, dict[str, Any], Callable[[str, dict[str, Any]], bool]]
RULES: list[Rule] = [
    ("plan is pro", {"attribute": "plan", "value": "pro"}, lambda i, p: p.get("plan") == "pro"),
    (
        "plan is not pro (missing counts)",
        {"attribute": "plan", "op": "ne", "value": "pro"},
        lambda i, p: p.get("plan", MISSING) != "pro",
    ),
    (
        "plan is null",
        {"attribute": "plan", "value": None},
        lambda i, p: "plan" in p and p["plan"] is None,
    ),
    ("plan exists", {"attribute": "plan", "op": "exists"}, lambda i, p: p.get("plan") is not None),
    (
        "plan does not exist",
        {"attribute": "plan", "op": "exists", "value": False},
        lambda i, p: p.get("plan") is None,
    ),
    (
        "spend over 250 (numbers only)",
        {"attribute": "spend", "op": "gt", "value": 250},
        lambda i, p: is_num(p.get("spend")) and p["spend"] > 250,
    ),
    (
        "spend at most 100",
        {"attribute": "spend", "op": "lte", "value": 100},
        lambda i, p: is_num(p.get("spend")) and p["spend"] <= 100,
    ),
    (
        "spend equals 120 as a number",
        {"attribute": "spend", "value": 120},
        lambda i, p: is_num(p.get("spend")) and p["spend"] == 120,
    ),
    (
        "spend equals '120' as text",
        {"attribute": "spend", "value": "120"},
        lambda i, p: p.get("spend") == "120",
    ),
    (
        "spend is true (not 1)",
        {"attribute": "spend", "value": True},
        lambda i, p: p.get("spend") is True,
    ),
    (
        "country in fr, de",
        {"attribute": "country", "op": "in", "value": ["fr", "de"]},
        lambda i, p: p.get("country") in ("fr", "de"),
    ),
    (
        "country after 'f' by code point",
        {"attribute": "country", "op": "gte", "value": "f"},
        lambda i, p: isinstance(p.get("country"), str) and p["country"] >= "f",
    ),
    (
        "tags contain vip",
        {"attribute": "tags", "op": "contains", "value": "vip"},
        lambda i, p: (
            isinstance(p.get("tags"), list)
            and "vip" in [x for x in p["tags"] if isinstance(x, str)]
        ),
    ),
    (
        "tags contain the number 7",
        {"attribute": "tags", "op": "contains", "value": 7},
        lambda i, p: (
            isinstance(p.get("tags"), list) and any(is_num(x) and x == 7 for x in p["tags"])
        ),
    ),
    (
        "tags contain true",
        {"attribute": "tags", "op": "contains", "value": True},
        lambda i, p: isinstance(p.get("tags"), list) and any(x is True for x in p["tags"]),
    ),
    (
        "name contains 'e' (text)",
        {"attribute": "name", "op": "contains", "value": "e"},
        lambda i, p: isinstance(p.get("name"), str) and "e" in p["name"],
    ),
    (
        "name sorts before 'a' by code point",
        {"attribute": "name", "op": "lt", "value": "a"},
        lambda i, p: isinstance(p.get("name"), str) and p["name"] < "a",
    ),
    (
        "city is Lyon (nested, exact case)",
        {"attribute": "address.city", "value": "Lyon"},
        lambda i, p: get(p, "address.city") == "Lyon",
    ),
    (
        "address has a city key",
        {"attribute": "address", "op": "contains", "value": "city"},
        lambda i, p: isinstance(p.get("address"), dict) and "city" in p["address"],
    ),
    (
        "verified is true",
        {"attribute": "verified", "value": True},
        lambda i, p: p.get("verified") is True,
    ),
    ("logged in ever", {"event": "login"}, lambda i, p: logins(i) > 0),
    ("logged in within 7d", {"event": "login", "within": "7d"}, lambda i, p: logins(i, 7) > 0),
    ("never purchased", {"event": "purchase", "happened": False}, lambda i, p: purchases(i) == 0),
    (
        "purchased at least 3 times",
        {"event": "purchase", "count": {"gte": 3}},
        lambda i, p: purchases(i) >= 3,
    ),
    (
        "logged in exactly twice in 30d",
        {"event": "login", "within": "30d", "count": {"eq": 2}},
        lambda i, p: logins(i, 30) == 2,
    ),
    (
        "pro and logged in recently, or big spender not in fr",
        {
            "any": [
                {
                    "all": [
                        {"attribute": "plan", "value": "pro"},
                        {"event": "login", "within": "14d"},
                    ]
                },
                {
                    "all": [
                        {"attribute": "spend", "op": "gte", "value": 400},
                        {"not": {"attribute": "country", "value": "fr"}},
                    ]
                },
            ]
        },
        lambda i, p: (
            (p.get("plan") == "pro" and logins(i, 14) > 0)
            or (is_num(p.get("spend")) and p["spend"] >= 400 and p.get("country") != "fr")
        ),
    ),
    (
        "in the manual vip list, or team plan",
        {"any": [{"segment": "vip_list"}, {"attribute": "plan", "value": "team"}]},
        lambda i, p: int(i[1:]) % 7 == 0 or p.get("plan") == "team",
    ),
]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def segment_store_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('segments')}/store.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(scope="module")
async def loaded(segment_store_url: str) -> AsyncIterator[Store]:
    store = await Store.open(segment_store_url)
    async with store.db.engine.begin() as conn:
        await conn.execute(t.segment_members.delete())
        await conn.execute(t.events.delete())
        await conn.execute(t.profiles.delete())
        await conn.execute(
            insert(t.profiles),
            [
                {
                    "id": pid,
                    "attributes": attrs,
                    "created_at": NOW,
                    "updated_at": NOW,
                    "email": None,
                }
                for pid, attrs in PEOPLE_DATA.items()
            ],
        )
        await conn.execute(
            insert(t.events),
            [
                {"recipient_id": pid, "name": name, "data": {}, "timestamp": at}
                for pid, happened in EVENTS_DATA.items()
                for name, at in happened
            ],
        )
    await store.segments.add_members(
        "vip_list", [pid for pid in PEOPLE_DATA if int(pid[1:]) % 7 == 0]
    )
    yield store
    await store.close()


def compiled(raw: dict[str, Any]) -> Any:
    condition = CONDITION.validate_python(raw)
    return resolve(condition)


def resolve(condition: Any) -> Any:
    """Mark the named list as manual, as the compiler does for segments.yaml."""
    if isinstance(condition, SegmentCondition):
        return SegmentCondition(segment=condition.segment, manual=True)
    for field in ("all", "any"):
        if hasattr(condition, field):
            return type(condition)(**{field: [resolve(c) for c in getattr(condition, field)]})
    if hasattr(condition, "not_"):
        return type(condition)(not_=resolve(condition.not_))
    return condition


def expected(rule: Rule) -> list[str]:
    return sorted(pid for pid, person in PEOPLE_DATA.items() if rule[2](pid, person))


def test_the_data_set_exercises_every_rule() -> None:
    for rule in RULES:
        hits = len(expected(rule))
        assert 0 < hits < PEOPLE, f"{rule[0]}: {hits} members proves little"


@pytest.mark.parametrize("rule", RULES, ids=[r[0] for r in RULES])
async def test_sql_members_match_the_hand_computed_answer(loaded: Store, rule: Rule) -> None:
    condition = compiled(rule[1])
    members: list[str] = []
    after = None
    while True:  # read every page, to check paging too
        page = await loaded.segments.members(condition, after=after, limit=700)
        members += page.ids
        if page.next is None:
            break
        after = page.next
    assert members == expected(rule)
    assert await loaded.segments.count(condition) == len(members)


@pytest.mark.parametrize("rule", RULES, ids=[r[0] for r in RULES])
async def test_the_evaluate_activity_agrees(loaded: Store, rule: Rule) -> None:
    condition = compiled(rule[1])
    sample = sorted(PEOPLE_DATA)[::37]
    truth = set(expected(rule))
    got = {pid for pid in sample if await evaluate(condition, pid, loaded, now=NOW)}
    assert got == truth & set(sample)


async def test_memberships_of_one_person_in_one_query(loaded: Store) -> None:
    named = {rule[0]: compiled(rule[1]) for rule in RULES}
    for pid in ("p00000", "p00007", "p01234"):
        person = PEOPLE_DATA[pid]
        assert await loaded.segments.memberships(pid, named) == [
            rule[0] for rule in RULES if rule[2](pid, person)
        ]
