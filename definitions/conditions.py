"""Conditions: what ``branch``, ``exit_when`` and segments test about a recipient.

A condition is one of::

    {attribute: plan, op: eq, value: pro}      # eq ne gt gte lt lte in contains exists
    {event: app_activated, within: 7d}         # done (or, with happened: false, not done)
    {segment: trial_users}                     # a named condition in segments.yaml
    {all: [...]}, {any: [...]}, {not: {...}}

Conditions are data; they are evaluated by an activity against the store, never in
workflow code.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from definitions.model import SchemaModel, check_duration, invalid

__all__ = [
    "CONDITION_KEYS",
    "AllCondition",
    "AnyCondition",
    "AttributeCondition",
    "Condition",
    "EventCondition",
    "EventCount",
    "NotCondition",
    "SegmentCondition",
    "children",
    "describe_condition",
    "event_names",
    "only_lasting_events",
    "segment_names",
]

Op = Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "contains", "exists"]


def _scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


class AttributeCondition(SchemaModel):
    """Compare a profile attribute (a dotted path into the profile) with a value.

    Values are compared only with values of the same kind: text with text, numbers with
    numbers, booleans with booleans (``true`` is not ``1``); anything else does not match.
    """

    attribute: str
    op: Op = "eq"
    value: Any = None

    @field_validator("attribute")
    @classmethod
    def _path(cls, value: str) -> str:
        # SQLite's JSON paths have no way to write a '"' in a key.
        if not value or any(not part for part in value.split(".")) or '"' in value:
            raise invalid(
                "expected an attribute name, or names joined by dots (address.city), "
                f"without '\"', found {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _value_fits_op(self) -> AttributeCondition:
        if self.op == "in":
            if not isinstance(self.value, list) or not all(_scalar(v) for v in self.value):
                raise invalid(
                    "expected a list of text, numbers or booleans as the value of "
                    f"op 'in', found {type(self.value).__name__}"
                )
            return self
        if self.op not in ("exists", "eq", "ne") and self.value is None:
            raise invalid(f"expected a value to compare with for op {self.op!r}, found nothing")
        if not _scalar(self.value):
            raise invalid(
                f"expected text, a number or a boolean as the value of op "
                f"{self.op!r}, found a {type(self.value).__name__}"
            )
        if self.op in ("gt", "gte", "lt", "lte") and isinstance(self.value, bool):
            raise invalid(
                f"expected text or a number to compare with op {self.op!r}, found a boolean"
            )
        return self


CountOp = Literal["eq", "gt", "gte", "lt", "lte"]


class EventCount(SchemaModel):
    """How many times: ``{gte: 3}`` (one of eq, gt, gte, lt, lte)."""

    eq: int | None = None
    gt: int | None = None
    gte: int | None = None
    lt: int | None = None
    lte: int | None = None

    @model_validator(mode="after")
    def _one(self) -> EventCount:
        given = [k for k in ("eq", "gt", "gte", "lt", "lte") if getattr(self, k) is not None]
        if len(given) != 1:
            raise invalid(
                "expected one of eq, gt, gte, lt, lte in count, found "
                + (", ".join(given) or "none")
            )
        return self

    @property
    def op(self) -> str:
        """The comparison."""
        return next(k for k in ("eq", "gt", "gte", "lt", "lte") if getattr(self, k) is not None)

    @property
    def number(self) -> int:
        """The number compared with."""
        value: int = getattr(self, self.op)
        return value


class EventCondition(SchemaModel):
    """The recipient did (or did not) do an event, ever or within a time frame.

    With ``count`` it is about how many times (``count: {gte: 3}``); ``happened: false``
    inverts the whole test.
    """

    event: str
    within: str | None = None
    happened: bool = True
    count: EventCount | None = None

    _check_within = field_validator("within")(lambda v: None if v is None else check_duration(v))


class SegmentCondition(SchemaModel):
    """Membership of a named segment; the compiler fills in its condition.

    A manual segment (people added by id) has no condition and ``manual`` set.
    """

    segment: str
    condition: Condition | None = Field(default=None, exclude=False)
    manual: bool = False


class AllCondition(SchemaModel):
    """Every one of the conditions holds."""

    all: list[Condition] = Field(min_length=1)


class AnyCondition(SchemaModel):
    """At least one of the conditions holds."""

    any: list[Condition] = Field(min_length=1)


class NotCondition(SchemaModel):
    """The condition does not hold."""

    not_: Condition = Field(alias="not")


_KINDS: dict[str, type[SchemaModel]] = {
    "attribute": AttributeCondition,
    "event": EventCondition,
    "segment": SegmentCondition,
    "all": AllCondition,
    "any": AnyCondition,
    "not": NotCondition,
}
CONDITION_KEYS = tuple(_KINDS)


def _condition_kind(value: object) -> str | None:
    if isinstance(value, dict):
        key = next((k for k in _KINDS if k in value), None)
        return None if key is None else f"cond:{key}"
    for key, model in _KINDS.items():
        if isinstance(value, model):
            return f"cond:{key}"
    return None


Condition = Annotated[
    Annotated[AttributeCondition, Tag("cond:attribute")]
    | Annotated[EventCondition, Tag("cond:event")]
    | Annotated[SegmentCondition, Tag("cond:segment")]
    | Annotated[AllCondition, Tag("cond:all")]
    | Annotated[AnyCondition, Tag("cond:any")]
    | Annotated[NotCondition, Tag("cond:not")],
    Discriminator(
        _condition_kind,
        custom_error_type="not_a_condition",
        custom_error_message="expected a condition",
    ),
]

for _model in (SegmentCondition, AllCondition, AnyCondition, NotCondition):
    _model.model_rebuild()


def children(condition: Condition) -> list[Condition]:
    """The conditions directly inside a combination (or a resolved segment)."""
    if isinstance(condition, AllCondition):
        return list(condition.all)
    if isinstance(condition, AnyCondition):
        return list(condition.any)
    if isinstance(condition, NotCondition):
        return [condition.not_]
    if isinstance(condition, SegmentCondition) and condition.condition is not None:
        return [condition.condition]
    return []


def event_names(condition: Condition) -> set[str]:
    """Names of the events a condition looks at (through resolved segments too)."""
    names = {condition.event} if isinstance(condition, EventCondition) else set()
    for child in children(condition):
        names |= event_names(child)
    return names


def segment_names(condition: Condition) -> set[str]:
    """Names of the segments a condition refers to directly or below."""
    names = {condition.segment} if isinstance(condition, SegmentCondition) else set()
    for child in children(condition):
        if not isinstance(condition, SegmentCondition):
            names |= segment_names(child)
    return names


def describe_condition(condition: Condition) -> str:
    """A one-line reading of a condition, for graphs and the Temporal UI."""
    if isinstance(condition, AttributeCondition):
        if condition.op == "exists":
            return f"{condition.attribute} exists"
        return f"{condition.attribute} {condition.op} {condition.value!r}"
    if isinstance(condition, EventCondition):
        verb = "did" if condition.happened else "did not do"
        frame = f" within {condition.within}" if condition.within else ""
        times = f" {condition.count.op} {condition.count.number} times" if condition.count else ""
        return f"{verb} {condition.event}{times}{frame}"
    if isinstance(condition, SegmentCondition):
        return f"in segment {condition.segment}"
    if isinstance(condition, NotCondition):
        return f"not ({describe_condition(condition.not_)})"
    joiner = " and " if isinstance(condition, AllCondition) else " or "
    return joiner.join(f"({describe_condition(c)})" for c in children(condition))


def only_lasting_events(condition: Condition) -> bool:
    """True when only new events can change the condition (events ever done, no attributes).

    Such an exit goal needs checking only when one of its events arrives, not before every
    step.
    """
    if isinstance(condition, EventCondition):
        return condition.within is None and condition.happened
    if isinstance(condition, AttributeCondition):
        return False
    return all(only_lasting_events(child) for child in children(condition))
