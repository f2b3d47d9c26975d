"""Durations as journeys write them: ``30s``, ``15m``, ``2h``, ``1d``, ``1w``, or ``1h30m``."""

from __future__ import annotations

import re
from datetime import timedelta

from definitions.diagnostics import shown
from definitions.limits import MAX_DURATION, MAX_DURATION_TEXT, MIN_DURATION

__all__ = [
    "DURATION_HINT",
    "MAX_SHOWN",
    "MIN_SHOWN",
    "format_duration",
    "parse_duration",
    "to_timedelta",
]

_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")
_WHOLE = re.compile(r"^(\d+(?:\.\d+)?[wdhms])+$")

DURATION_HINT = "a duration like 30s, 15m, 2h, 1d or 1w"
MIN_SHOWN = f"{MIN_DURATION.total_seconds():g}s"
MAX_SHOWN = f"{MAX_DURATION.days // 365} years ({MAX_DURATION.days}d)"


def parse_duration(text: str) -> float:
    """Seconds in a duration string.

    Args:
        text: ``30s``, ``15m``, ``2h``, ``1d``, ``1w`` or a run of them (``1h30m``).

    Raises:
        ValueError: when the text is not such a duration, is zero, or is outside what a
            run can wait (:data:`~definitions.limits.MIN_DURATION` to
            :data:`~definitions.limits.MAX_DURATION`).

    """
    compact = text.strip().replace(" ", "")
    if not _WHOLE.match(compact):
        raise ValueError(f"expected {DURATION_HINT}, found {shown(text)}")
    if len(compact) > MAX_DURATION_TEXT:
        raise ValueError(
            f"expected a duration of at most {MAX_DURATION_TEXT} characters, found {shown(text)}"
        )
    seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(compact))
    if seconds <= 0:
        raise ValueError(f"expected a duration longer than zero, found {shown(text)}")
    if seconds < MIN_DURATION.total_seconds():
        raise ValueError(f"expected a duration of at least {MIN_SHOWN}, found {shown(text)}")
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"expected a duration of at most {MAX_SHOWN}, found {shown(text)}")
    return seconds


def to_timedelta(value: str | float | timedelta) -> timedelta:
    """A timedelta from a duration string, a number of seconds or a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        return timedelta(seconds=parse_duration(value))
    return timedelta(seconds=float(value))


def format_duration(seconds: float) -> str:
    """The shortest duration string for ``seconds`` (``90`` gives ``1m30s``)."""
    if seconds < 1:
        return f"{seconds:g}s"
    rest = round(seconds)
    parts = []
    for unit, size in _UNITS.items():
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
