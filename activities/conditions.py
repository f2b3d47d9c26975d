"""Evaluating conditions against a recipient's profile and events in the store."""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from definitions.conditions import (
    AllCondition,
    AnyCondition,
    AttributeCondition,
    Condition,
    EventCondition,
    NotCondition,
    SegmentCondition,
)
from definitions.durations import parse_duration
from journeys.store import Store

__all__ = ["attribute_value", "compare", "count_matches", "evaluate"]

_MISSING = object()


def attribute_value(profile: dict[str, Any], path: str) -> object:
    """The value at a dotted path in a profile (``address.city``), or a missing marker."""
    value: object = profile
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    if value is None:
        return "null"
    return type(value).__name__


def _same(actual: object, expected: object) -> bool:
    return _kind(actual) == _kind(expected) and bool(actual == expected)


def _contains(actual: object, expected: object) -> bool:
    """Text in text, an item in a list, a key in an object."""
    if isinstance(actual, str | dict):
        return isinstance(expected, str) and expected in actual
    if isinstance(actual, list):
        return any(_same(item, expected) for item in actual)
    return False


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


def compare(actual: object, op: str, expected: object) -> bool:
    """Apply a comparison operator; values of different kinds never match.

    The kinds are text, number, boolean and null (``true`` is not ``1``), as in the SQL
    the segment queries use.
    """
    if op == "exists":
        present = actual is not _MISSING and actual is not None
        return present if expected is None else present == bool(expected)
    if actual is _MISSING:
        return op == "ne"
    if op == "eq":
        return _same(actual, expected)
    if op == "ne":
        return not _same(actual, expected)
    if op == "in":
        return isinstance(expected, list) and any(_same(actual, item) for item in expected)
    if op == "contains":
        return _contains(actual, expected)
    if _kind(actual) != _kind(expected) or _kind(actual) not in ("number", "text"):
        return False
    order = _ORDER.get(op)
    if order is None:
        raise ValueError(f"unknown operator {op!r}")
    return order(actual, expected)


def count_matches(count: int, op: str, number: int) -> bool:
    """``count <op> number``."""
    return {
        "eq": count == number,
        "gt": count > number,
        "gte": count >= number,
        "lt": count < number,
        "lte": count <= number,
    }[op]


async def evaluate(
    condition: Condition,
    recipient_id: str,
    store: Store,
    *,
    now: datetime | None = None,
    profile: dict[str, Any] | None = None,
) -> bool:
    """Whether a (compiled) condition holds for a recipient now."""
    if isinstance(condition, AttributeCondition):
        if profile is None:
            profile = await store.profiles.get(recipient_id) or {"id": recipient_id}
        return compare(attribute_value(profile, condition.attribute), condition.op, condition.value)
    if isinstance(condition, EventCondition):
        return await _did(condition, recipient_id, store, now)
    if isinstance(condition, SegmentCondition):
        if condition.manual:
            return await store.segments.is_member(condition.segment, recipient_id)
        if condition.condition is None:
            raise ValueError(f"segment {condition.segment!r} was not resolved by the compiler")
        return await evaluate(condition.condition, recipient_id, store, now=now, profile=profile)
    if isinstance(condition, NotCondition):
        return not await evaluate(condition.not_, recipient_id, store, now=now, profile=profile)
    if isinstance(condition, AllCondition | AnyCondition):
        wanted = isinstance(condition, AllCondition)
        parts = condition.all if isinstance(condition, AllCondition) else condition.any
        for part in parts:
            if await evaluate(part, recipient_id, store, now=now, profile=profile) != wanted:
                return not wanted
        return wanted
    raise TypeError(f"not a condition: {condition!r}")


async def _did(
    condition: EventCondition, recipient_id: str, store: Store, now: datetime | None
) -> bool:
    """Whether an event condition holds: done (so many times, within the frame) or not."""
    since = None
    if condition.within:
        since = (now or datetime.now(UTC)) - timedelta(seconds=parse_duration(condition.within))
    times = await store.events.count(recipient_id, condition.event, since)
    if condition.count is not None:
        done = count_matches(times, condition.count.op, condition.count.number)
    else:
        done = times > 0
    return done == condition.happened
