"""Checks of request fields with :mod:`definitions.values`, by their names in the request.

The routes call these before anything is written; a problem is a 422 naming the field as
the caller sent it (``timestamp``, ``device.last_used``, ``operations[2].data.n``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from pydantic import WithJsonSchema

from definitions.errors import InvalidRequestError
from definitions.values import (
    MAX_ID_LENGTH,
    MAX_TIMESTAMP,
    MIN_TIMESTAMP,
    check_document,
    check_id,
    check_text,
    check_timestamp,
)

__all__ = [
    "ID_SCHEMA",
    "TEXT_SCHEMA",
    "Id",
    "Seconds",
    "operation_problems",
    "optional_document",
    "optional_id",
    "optional_text",
    "recipient_problems",
    "require",
]

_CONTROL = "\\u0000-\\u001f\\u007f-\\u009f"

ID_SCHEMA: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_ID_LENGTH,
    "pattern": f"^[^{_CONTROL}]*[^\\s{_CONTROL}][^{_CONTROL}]*$",
    "description": "An id: not only blanks, no control characters.",
}
"""What :func:`~definitions.values.check_id` accepts, as far as JSON Schema can say it."""

TEXT_SCHEMA: dict[str, Any] = {"type": "string", "pattern": "^[^\\u0000]*$"}
"""Text without NUL (:func:`~definitions.values.check_text`)."""

Id = Annotated[str, WithJsonSchema(ID_SCHEMA)]
"""A person, event or anonymous id in a body; routes check it with ``check_id``."""

Seconds = Annotated[
    Any,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": MIN_TIMESTAMP, "maximum": MAX_TIMESTAMP},
                {"type": "null"},
            ],
            "description": "Unix seconds (not milliseconds).",
        }
    ),
]
"""A timestamp in a body; routes check it with ``check_timestamp`` (which names the field)."""


def require(*problems: Iterable[str]) -> None:
    """Raise :class:`InvalidRequestError` with every problem given, if there is one."""
    found = [p for group in problems for p in group]
    if found:
        raise InvalidRequestError(found)


def optional_id(value: object, where: str) -> list[str]:
    """Problems with an id that may be absent (None)."""
    return [] if value is None else check_id(value, where)


def optional_text(value: object, where: str) -> list[str]:
    """Problems with text that may be absent (None)."""
    if value is None:
        return []
    if not isinstance(value, str):
        return [f"{where}: expected text, found {type(value).__name__}"]
    return check_text(value, where)


def optional_document(value: object, where: str) -> list[str]:
    """Problems with a mapping of JSON values that may be absent (None)."""
    return [] if value is None else check_document(value, where)


_NEEDS_ID = {"identify", "track", "delete", "add_device", "remove_device", "suppress", "unsuppress"}


def operation_problems(op: Mapping[str, object], where: str) -> list[str]:
    """Problems with the values of one operation of ``JourneysClient.batch``.

    The operation's shape (its type, which fields it needs) is checked by the batch itself;
    this checks the values it carries, so that a bad one is refused before the operation
    writes anything.
    """
    kind = op.get("type")
    problems: list[str] = []
    if kind in _NEEDS_ID:
        problems += check_id(op.get("id"), f"{where}.id")
    if kind in ("track", "track_anonymous"):
        problems += check_id(op.get("event"), f"{where}.event")
    if kind == "merge":
        problems += check_id(op.get("primary"), f"{where}.primary")
        problems += check_id(op.get("secondary"), f"{where}.secondary")
    if kind in ("add_device", "remove_device"):
        problems += check_id(op.get("token"), f"{where}.token")
    problems += optional_id(op.get("anonymous_id"), f"{where}.anonymous_id")
    problems += optional_id(op.get("event_id"), f"{where}.event_id")
    problems += optional_text(op.get("platform"), f"{where}.platform")
    problems += optional_text(op.get("reason"), f"{where}.reason")
    for name in ("attributes", "data"):
        problems += optional_document(op.get(name), f"{where}.{name}")
    problems += check_timestamp(op.get("timestamp"), f"{where}.timestamp")
    return problems


def recipient_problems(recipients: Iterable[object]) -> list[str]:
    """Problems with the ids and profile fields of trigger recipients.

    What is neither an id nor a mapping is left to ``trigger`` itself, which names it.
    """
    problems: list[str] = []
    for index, item in enumerate(recipients):
        where = f"recipients[{index}]"
        if isinstance(item, str):
            problems += check_id(item, where)
        elif isinstance(item, Mapping) and isinstance(item.get("id"), str):
            problems += check_id(item["id"], f"{where}.id")
            problems += check_document({k: v for k, v in item.items() if k != "id"}, where)
    return problems
