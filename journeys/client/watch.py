"""Which events can change a segment's membership: read from its condition, once.

``track`` re-evaluates a person's trigger segments after recording an event. Most
segments cannot change with a given event: ``{attribute: plan, value: pro}`` never does,
``{event: purchase, count: {gte: 2}}`` only with a ``purchase``. :func:`watch` works out
from the condition tree which event names a segment reads, and whether it must be
re-evaluated after every event whatever its name — as it always was — because its answer
can change without that event:

- it measures time (``within``): its members change as time passes, and an event is
  when it is looked at again;
- it can hold for a person who has no attributes and no events (``ne``, ``exists:
  false``, ``not``, ``happened: false``, a count that 0 satisfies): the empty profile
  an event creates for a new person may be in it;
- it names a segment whose rule it does not carry (defined through the API).
"""

from __future__ import annotations

from dataclasses import dataclass

from definitions.conditions import (
    AllCondition,
    AnyCondition,
    AttributeCondition,
    Condition,
    EventCondition,
    NotCondition,
    SegmentCondition,
)

__all__ = ["Watch", "watch"]


@dataclass(frozen=True)
class Watch:
    """What can change a segment's membership."""

    events: frozenset[str]
    """The event names its condition reads."""
    always: bool
    """Re-evaluated after every event, whatever its name."""

    def changed_by(self, event: str) -> bool:
        """Whether an event of this name may change the membership."""
        return self.always or event in self.events


def watch(condition: Condition) -> Watch:
    """What can change the membership of the people a condition holds for."""
    events: set[str] = set()
    timed = _reads(condition, events)
    return Watch(frozenset(events), timed or _may_hold_for_nobody(condition))


def _reads(condition: Condition, events: set[str]) -> bool:
    """Adds the event names the condition reads; True if it measures time or is unknown."""
    if isinstance(condition, EventCondition):
        events.add(condition.event)
        return condition.within is not None
    if isinstance(condition, AllCondition | AnyCondition):
        parts = condition.all if isinstance(condition, AllCondition) else condition.any
        return any([_reads(part, events) for part in parts])
    if isinstance(condition, NotCondition):
        return _reads(condition.not_, events)
    if isinstance(condition, SegmentCondition):
        if condition.manual:
            return False
        if condition.condition is None:
            return True
        return _reads(condition.condition, events)
    return False


def _may_hold_for_nobody(condition: Condition) -> bool:
    """Whether the condition may hold for a person with no attributes and no events."""
    if isinstance(condition, AttributeCondition):
        return condition.op in ("ne", "exists")
    if isinstance(condition, EventCondition):
        if not condition.happened:
            return True
        if condition.count is None:
            return False
        n = condition.count.number
        return {"eq": n == 0, "gt": n < 0, "gte": n <= 0, "lt": n > 0, "lte": n >= 0}[
            condition.count.op
        ]
    if isinstance(condition, AllCondition):
        return all(_may_hold_for_nobody(part) for part in condition.all)
    if isinstance(condition, AnyCondition):
        return any(_may_hold_for_nobody(part) for part in condition.any)
    if isinstance(condition, SegmentCondition):
        if condition.manual:
            return False
        return condition.condition is None or _may_hold_for_nobody(condition.condition)
    return True  # not, and anything else: taken as able to
