"""The Python API refuses what the store could not hold, before writing anything.

Every value that crosses into journeys — recipients, profile fields, trigger and event
data, ids, timestamps — is either taken whole (and reads back as given) or refused with
an ``InvalidRequestError`` naming the field; nothing is half-written (no trigger row, no
profile, no run) and no other exception escapes.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from definitions.compiler import Library
from definitions.values import MAX_DEPTH, loads
from journeys import (
    InvalidRecipientError,
    InvalidRequestError,
    JourneysClient,
    UnknownJourneyError,
)
from journeys.store import Store
from journeys.store import tables as t
from tests.helpers import Engine, copy_examples


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


# (what, trigger() keyword arguments, the error, words its message has)
TRIGGERS: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("lone surrogate id", {"recipients": ["ok", "\ud800"]}, InvalidRecipientError, "surrogate"),
    ("NUL in an id", {"recipients": ["a\x00b"]}, InvalidRecipientError, "NUL"),
    ("control character id", {"recipients": ["a\nb"]}, InvalidRecipientError, "control"),
    ("id too long", {"recipients": ["x" * 256]}, InvalidRecipientError, "at most 255"),
    (
        "NaN profile field",
        {"recipients": [{"id": "n", "n": math.nan}]},
        InvalidRecipientError,
        "recipients[0].n: expected a finite number",
    ),
    (
        "a device that is no token",
        {"recipients": [{"id": "d", "devices": [5]}]},
        InvalidRecipientError,
        "recipients[0].devices[0]",
    ),
    ("no recipients", {"recipients": None}, InvalidRecipientError, "found NoneType"),
    ("a mapping, not a list", {"recipients": {"id": "x"}}, InvalidRecipientError, "list"),
    ("an int", {"recipients": 5}, InvalidRecipientError, "found int"),
    ("empty", {"recipients": []}, InvalidRecipientError, "at least one"),
    (
        "bad last of many",
        {"recipients": [f"u{i}" for i in range(80)] + [""]},
        InvalidRecipientError,
        "recipients[80]",
    ),
    (
        "data nested 500 deep",
        {"recipients": ["d"], "data": nested(500)},
        InvalidRequestError,
        f"at most {MAX_DEPTH} levels",
    ),
    (
        "3 MB of data",
        {"recipients": ["d"], "data": {"blob": "x" * 3_000_000}},
        InvalidRequestError,
        "bytes as JSON",
    ),
    (
        "infinite data",
        {"recipients": ["d"], "data": {"x": math.inf}},
        InvalidRequestError,
        "data.x: expected a finite number",
    ),
    (
        "integer of 5000 digits",
        {"recipients": ["d"], "data": {"x": 10**5000}},
        InvalidRequestError,
        "64 bits",
    ),
    (
        "data not a mapping",
        {"recipients": ["d"], "data": [1, 2]},
        InvalidRequestError,
        "expected a mapping",
    ),
    (
        "idempotency key a list",
        {"recipients": ["d"], "idempotency_key": ["x"]},
        InvalidRequestError,
        "idempotency_key",
    ),
    (
        "per-recipient data a list",
        {"recipients": ["d"], "per_recipient_data": ["x"]},
        InvalidRecipientError,
        "per_recipient_data: expected a mapping",
    ),
    (
        "per-recipient data of a stranger",
        {"recipients": ["d"], "per_recipient_data": {"z": {}}},
        InvalidRecipientError,
        "unknown id",
    ),
    (
        "per-recipient data not a mapping",
        {"recipients": ["d"], "per_recipient_data": {"d": 3}},
        InvalidRecipientError,
        "expected a mapping",
    ),
    ("cohorts not a bool", {"recipients": ["d"], "cohorts": "yes"}, InvalidRequestError, "cohorts"),
    (
        "a cohort's input over Temporal's limit",
        {
            "recipients": [f"big{i}" for i in range(60)],
            "per_recipient_data": {f"big{i}": {"x": "y" * 40_000} for i in range(60)},
            "cohorts": True,
        },
        InvalidRequestError,
        "lower [cohorts] size",
    ),
]


async def written(store: Store) -> tuple[int, int, int]:
    """Rows of triggers, profiles and runs in the store."""
    async with store.db.engine.connect() as conn:
        counts = []
        for table in (t.triggers, t.profiles, t.runs):
            counts.append((await conn.execute(select(func.count()).select_from(table))).scalar())
    return counts[0], counts[1], counts[2]


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [case[1:] for case in TRIGGERS],
    ids=[case[0] for case in TRIGGERS],
)
async def test_a_bad_trigger_writes_nothing_and_says_what_is_wrong(
    engine: Engine, kwargs: dict[str, Any], error: type[Exception], words: str
) -> None:
    before = await written(engine.client.store)
    with pytest.raises(error) as raised:
        await engine.client.trigger("onboarding", **kwargs)
    assert words in str(raised.value)
    assert await written(engine.client.store) == before
    assert [
        w
        async for w in engine.temporal.list_workflows(
            f'TaskQueue="{engine.settings.temporal.task_queue}"'
        )
    ] == []


async def test_a_journey_that_is_not_a_name(engine: Engine) -> None:
    with pytest.raises(InvalidRequestError, match="journey: expected a journey's name"):
        await engine.client.trigger(None, ["x"])  # type: ignore[arg-type]
    with pytest.raises(UnknownJourneyError):
        await engine.client.trigger("nope", ["x"])


@pytest.fixture
async def people(tmp_path: Path) -> AsyncIterator[JourneysClient]:
    """A client on the store alone: identify, track and read people back."""
    store = await Store.open(f"sqlite:///{tmp_path}/store.db")
    client = JourneysClient(
        None, store, Library(copy_examples(tmp_path / "journeys")), task_queue="unused"
    )
    yield client
    await store.close()


# Python values of every kind: JSON ones and the ones JSON has no room for.
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=8)
    | st.binary(max_size=4)
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=4) | st.integers(), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(attributes=st.dictionaries(st.text(max_size=6), _values, max_size=4), event=_values)
async def test_people_and_events_take_json_values_or_refuse_them(
    people: JourneysClient, attributes: dict[str, Any], event: Any
) -> None:
    try:
        await people.identify("fuzzed", attributes)
    except InvalidRequestError as exc:
        assert exc.problems and all(p.startswith("attributes") for p in exc.problems)
    else:
        assert (await people.person("fuzzed")).attributes.items() >= attributes.items()
    try:
        await people.track("fuzzed", "fuzz", {"value": event})
    except InvalidRequestError as exc:
        assert all(p.startswith("data") for p in exc.problems)
    # Whatever was accepted can be read back: the store holds nothing it cannot give back.
    page = await people.people(limit=10)
    assert page.ids == ["fuzzed"]
    assert (await people.export_person("fuzzed"))["person"]["id"] == "fuzzed"


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda c: c.identify("\ud800"), "surrogate"),
        (lambda c: c.identify("ok", anonymous_id=7), "anonymous_id"),
        (lambda c: c.identify("ok", ["not", "a", "mapping"]), "expected a mapping"),
        (lambda c: c.track("ok", "e", timestamp=1700000000000), "milliseconds"),
        (lambda c: c.track("ok", "e", timestamp=math.nan), "finite"),
        (lambda c: c.track("ok", "e", timestamp=-1e11), "between"),
        (lambda c: c.track("ok", "e", timestamp="yesterday"), "Unix seconds"),
        (lambda c: c.track("ok", "", {}), "event"),
        (lambda c: c.track("ok", "e", event_id=["x"]), "event_id"),
        (lambda c: c.track_anonymous(None, "e"), "anonymous_id"),
        (lambda c: c.add_device("ok", "tok", "ios", last_used=1e20), "last_used"),
        (lambda c: c.add_device("ok", "", "ios"), "device id"),
        (lambda c: c.people(attribute=("plan", math.nan)), "finite"),
        (lambda c: c.people(attribute=("pl\x00an", "x")), "NUL"),
        (lambda c: c.people(attribute=('a"b', "x")), "without"),
        (lambda c: c.define_segment("s", {"attribute": 'a"b', "value": 1}), "without"),
        (lambda c: c.person("a\x00"), "NUL"),
        (lambda c: c.update_preferences("ok", channels={"sms": "yes"}), "true or false"),
        (lambda c: c.suppress("x", reason="r", kind="everyone"), "kind"),
        (lambda c: c.define_segment("s", {"attribute": "plan", "value": math.inf}), "finite"),
        (lambda c: c.add_to_segment("beta_testers", "abc"), "found str"),
        (lambda c: c.status("a\x00b"), "NUL"),
        (lambda c: c.message_status(""), "non-empty"),
    ],
)
async def test_each_call_names_the_field_it_refuses(
    people: JourneysClient, call: Any, words: str
) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        await call(people)
    assert words in str(raised.value)
    assert (await people.people()).ids == []  # nothing was written


def test_strict_json_refuses_what_the_store_cannot_hold() -> None:
    for text, words in [
        ("NaN", "no NaN"),
        ('{"a": -Infinity}', "no NaN"),
        (b"\xff\xfe", "UTF-8"),
        ("[" * 10_000, "levels of nesting"),
        ('{"a": ', "expected JSON"),
    ]:
        with pytest.raises(ValueError, match=words):
            loads(text)
    assert loads('{"a": [1, 2.5, "é"]}') == {"a": [1, 2.5, "é"]}


def test_the_command_line_refuses_json_the_store_cannot_hold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from journeys.cli import main

    assert main(["trigger", "onboarding", "--to", "u1", "--data", '{"a": NaN}']) == 2
    assert "--data: expected a JSON number, found NaN" in capsys.readouterr().err
    lines = tmp_path / "people.txt"
    lines.write_bytes(b"u1\n\xff\n")
    code = main(["trigger", "onboarding", "--to-file", str(lines)])
    assert code == 1
    assert "expected UTF-8 text, found byte 0xff" in capsys.readouterr().err
