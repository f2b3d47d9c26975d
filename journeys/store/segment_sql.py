"""Conditions compiled to SQL over the store, for segment membership and member lists.

The SQL follows the same rules as :func:`activities.conditions.evaluate` (a test checks
both against hand-computed answers on a generated data set): values compare only with
values of the same kind; text orders by code point (``COLLATE "C"`` on PostgreSQL, the
default binary collation on SQLite); a missing attribute matches only ``ne``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Float,
    String,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.sql.elements import ColumnElement

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
from definitions.values import JSONValue
from journeys.store import tables as t

__all__ = ["ConditionSQL"]

Expr = ColumnElement[Any]


class ConditionSQL:
    """Turns conditions into boolean SQL expressions about ``profiles`` rows.

    Args:
        dialect: ``sqlite`` or ``postgresql``.
        now: the time ``within`` is measured from.
        lookup: finds a segment that a condition names but does not carry (one defined
            through the API), as a SegmentCondition, or None when there is none.

    """

    def __init__(
        self,
        dialect: str,
        *,
        now: datetime | None = None,
        lookup: Callable[[str], SegmentCondition | None] | None = None,
    ) -> None:
        if dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"segments need SQLite or PostgreSQL, not {dialect}")
        self.pg = dialect == "postgresql"
        self.now = now or datetime.now(UTC)
        self.lookup = lookup or (lambda name: None)
        self.attributes = t.profiles.c.attributes

    def where(self, condition: Condition) -> Expr:
        """The expression that holds for the profiles the condition holds for."""
        if isinstance(condition, AttributeCondition):
            return self._attribute(condition)
        if isinstance(condition, EventCondition):
            return self._event(condition)
        if isinstance(condition, SegmentCondition):
            return self._segment(condition)
        if isinstance(condition, NotCondition):
            return not_(self.where(condition.not_))
        if isinstance(condition, AllCondition):
            return and_(true(), *(self.where(c) for c in condition.all))
        if isinstance(condition, AnyCondition):
            return or_(false(), *(self.where(c) for c in condition.any))
        raise TypeError(f"not a condition: {condition!r}")

    # -- attributes ------------------------------------------------------------------------

    def _json(self, keys: list[str]) -> tuple[Expr, Expr, Expr]:
        """(type, text value, numeric value) of the JSON value at a path; type NULL if absent."""
        kind: Expr
        text: Expr
        if self.pg:
            node = func.json_extract_path(self.attributes, *keys)
            kind = case(
                (func.json_typeof(node) == "string", literal("text")),
                (func.json_typeof(node) == "number", literal("number")),
                (func.json_typeof(node) == "boolean", literal("bool")),
                else_=func.json_typeof(node),
            )
            text = func.json_extract_path_text(self.attributes, *keys)
        else:
            path = "$" + "".join('."' + k.replace('"', '""') + '"' for k in keys)
            raw = func.json_type(self.attributes, path)
            kind = case(
                (raw.in_(["integer", "real"]), literal("number")),
                (raw.in_(["true", "false"]), literal("bool")),
                else_=raw,
            )
            text = case(
                (raw == "true", literal("true")),
                (raw == "false", literal("false")),
                else_=cast(func.json_extract(self.attributes, path), String),
            )
        number = case((kind == "number", cast(text, Float)))
        return kind, text, number

    def _same(self, kind: Expr, text: Expr, number: Expr, value: JSONValue) -> Expr:
        """The value at the path equals ``value``, same kind only; never NULL."""
        if value is None:
            return func.coalesce(kind == "null", false())
        if isinstance(value, bool):
            return func.coalesce(
                and_(kind == "bool", text == ("true" if value else "false")), false()
            )
        if isinstance(value, int | float):
            return func.coalesce(and_(kind == "number", number == float(value)), false())
        return func.coalesce(and_(kind == "text", self._text(text) == value), false())

    def _text(self, text: Expr) -> Expr:
        return text.collate("C") if self.pg else text

    def _attribute(self, condition: AttributeCondition) -> Expr:
        keys = condition.attribute.split(".")
        kind, text, number = self._json(keys)
        op, value = condition.op, condition.value
        if op == "exists":
            present = func.coalesce(and_(kind.is_not(None), kind != "null"), false())
            return present if value is None or value else not_(present)
        if op == "eq":
            return self._same(kind, text, number, value)
        if op == "ne":
            return not_(self._same(kind, text, number, value))
        if op == "in":
            return or_(false(), *(self._same(kind, text, number, v) for v in value))
        if op == "contains":
            return self._contains(keys, kind, text, value)
        compare = {"gt": "__gt__", "gte": "__ge__", "lt": "__lt__", "lte": "__le__"}[op]
        if isinstance(value, int | float):
            return func.coalesce(and_(kind == "number", getattr(number, compare)(value)), false())
        return func.coalesce(
            and_(kind == "text", getattr(self._text(text), compare)(value)), false()
        )

    def _contains(self, keys: list[str], kind: Expr, text: Expr, value: JSONValue) -> Expr:
        in_text: Expr
        in_object: Expr
        if isinstance(value, str):
            position = func.strpos(text, value) if self.pg else func.instr(text, value)
            in_text = func.coalesce(and_(kind == "text", position > 0), false())
            key_kind, _, _ = self._json([*keys, value])
            in_object = func.coalesce(and_(kind == "object", key_kind.is_not(None)), false())
        else:
            in_text = in_object = false()
        return or_(in_text, in_object, self._in_array(keys, kind, value))

    def _in_array(self, keys: list[str], kind: Expr, value: JSONValue) -> Expr:
        if self.pg:
            node = func.json_extract_path(self.attributes, *keys)
            safe = case((kind == "array", node), else_=literal_column("'[]'::json"))
            items = func.json_array_elements(safe).table_valued("value").alias("item")
            item = items.c.value
            item_kind = func.json_typeof(item)
            item_text = item.op("#>>")(literal_column("'{}'::text[]"))
            matches = self._item_matches(item_kind, item_text, value, pg=True)
        else:
            path = "$" + "".join('."' + k.replace('"', '""') + '"' for k in keys)
            items = (
                func.json_each(self.attributes, path)
                .table_valued("value", "type", "atom")
                .alias("item")
            )
            matches = self._item_matches(items.c.type, cast(items.c.atom, String), value, pg=False)
        found = exists(select(literal(1)).select_from(items).where(matches))
        return func.coalesce(and_(kind == "array", found), false())

    def _item_matches(
        self, item_kind: Expr, item_text: Expr, value: JSONValue, *, pg: bool
    ) -> Expr:
        if value is None:
            return item_kind == "null"
        if isinstance(value, bool):
            name = "boolean" if pg else ("true" if value else "false")
            if pg:
                return and_(item_kind == name, item_text == ("true" if value else "false"))
            return item_kind == name
        if isinstance(value, int | float):
            number_kinds = ["number"] if pg else ["integer", "real"]
            as_number = case((item_kind.in_(number_kinds), cast(item_text, Float)))
            return and_(item_kind.in_(number_kinds), as_number == float(value))
        return and_(item_kind == ("string" if pg else "text"), item_text == value)

    # -- events and segments -----------------------------------------------------------------

    def _event(self, condition: EventCondition) -> Expr:
        e = t.events
        where = [e.c.recipient_id == t.profiles.c.id, e.c.name == condition.event]
        if condition.within:
            since = self.now - timedelta(seconds=parse_duration(condition.within))
            where.append(e.c.timestamp >= since)
        if condition.count is None:
            done: Expr = exists(select(literal(1)).select_from(e).where(*where))
        else:
            times = select(func.count()).select_from(e).where(*where).scalar_subquery()
            n = condition.count.number
            done = {
                "eq": times == n,
                "gt": times > n,
                "gte": times >= n,
                "lt": times < n,
                "lte": times <= n,
            }[condition.count.op]
        return done if condition.happened else not_(done)

    def _segment(self, condition: SegmentCondition) -> Expr:
        if condition.manual:
            m = t.segment_members
            return exists(
                select(literal(1))
                .select_from(m)
                .where(m.c.segment == condition.segment, m.c.recipient_id == t.profiles.c.id)
            )
        if condition.condition is not None:
            return self.where(condition.condition)
        found = self.lookup(condition.segment)
        if found is None or (found.condition is None and not found.manual):
            raise KeyError(f"unknown segment {condition.segment!r}")
        return self.where(found)
