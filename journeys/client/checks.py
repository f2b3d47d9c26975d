"""The checks of the client's input that its areas share: ids, event names, text, times.

Each raises :class:`~definitions.errors.InvalidRequestError` naming the value.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from definitions.errors import InvalidRequestError
from definitions.values import check_text as text_problems
from definitions.values import require_id, require_timestamp

__all__ = ["check_event", "check_id", "check_ids", "check_text", "check_time"]


def check_id(value: object, what: str = "id") -> str:
    """An id (text, 1 to 255 characters, no control characters)."""
    return require_id(value, what)


def check_ids(values: object) -> list[str]:
    """A list of ids."""
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise InvalidRequestError([f"ids: expected a list of ids, found {type(values).__name__}"])
    return [check_id(p, f"ids[{i}]") for i, p in enumerate(values)]


def check_event(value: object) -> str:
    """An event name: the rules of ids (text, 1 to 255 characters, no control characters)."""
    return require_id(value, "event")


def check_text(value: object, what: str, limit: int) -> str:
    """Text of 1 to ``limit`` characters, not only spaces."""
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        shown = f"{len(value)} characters" if isinstance(value, str) else repr(value)[:40]
        raise InvalidRequestError(
            [f"{what}: expected text of 1 to {limit} characters, found {shown}"]
        )
    problems = text_problems(value, what)
    if problems:
        raise InvalidRequestError(problems)
    return value


def check_time(value: object, what: str = "timestamp") -> datetime | None:
    """A time: a datetime or seconds since the epoch, in range; None stays None."""
    return require_timestamp(value, what)
