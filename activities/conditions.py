"""Evaluating conditions against a recipient's profile and events in the store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from definitions.conditions import (
    AllCondition,
    AnyCondition,
    AttributeCondition,
    EventCondition,
    NotCondition,
    SegmentCondition,
)
from definitions.durations import parse_duration
from journeys.store import Store

__all__ = ["attribute_value", "compare", "evaluate"]

_MISSING = object()


def attribute_value(profile: dict[str, Any], path: str) -> Any:
    """The value at a dotted path in a profile (``address.city``), or a missing marker."""
    value: Any = profile
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def compare(actual: Any, op: str, expected: Any) -> bool:
    """Apply a comparison operator; mismatched types compare as not matching."""
    if op == "exists":
        present = actual is not _MISSING and actual is not None
        return present if expected is None else present == bool(expected)
    if actual is _MISSING:
        return op == "ne"
    try:
        if op == "eq":
            return bool(actual == expected)
        if op == "ne":
            return bool(actual != expected)
        if op == "gt":
            return bool(actual > expected)
        if op == "gte":
            return bool(actual >= expected)
        if op == "lt":
            return bool(actual < expected)
        if op == "lte":
            return bool(actual <= expected)
        if op == "in":
            return actual in expected
        if op == "contains":
            return expected in actual
    except TypeError:
        return False
    raise ValueError(f"unknown operator {op!r}")


async def evaluate(
    condition: Any,
    recipient_id: str,
    store: Store,
    *,
    now: datetime | None = None,
    profile: dict[str, Any] | None = None,
) -> bool:
    """Whether a (compiled) condition holds for a recipient now."""
    if isinstance(condition, AttributeCondition):
        if profile is None:
            profile = await store.get_profile(recipient_id) or {"id": recipient_id}
        return compare(attribute_value(profile, condition.attribute), condition.op, condition.value)
    if isinstance(condition, EventCondition):
        since = None
        if condition.within:
            since = (now or datetime.now(UTC)) - timedelta(seconds=parse_duration(condition.within))
        done = await store.event_count(recipient_id, condition.event, since) > 0
        return done == condition.happened
    if isinstance(condition, SegmentCondition):
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
