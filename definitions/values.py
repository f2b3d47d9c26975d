"""The values journeys accepts, decided once and checked at every door.

Everything a caller hands journeys — profile attributes, event and trigger data, person
and event ids, timestamps — ends up in the store, in Temporal's histories and in
templates. A value that one of them cannot hold or read back (``NaN``, a lone surrogate,
an object nested 500 deep, a timestamp in milliseconds) is refused where it comes in,
with the field named, so the store never holds what it cannot give back:

- **JSON values** (RFC 8259): objects with string keys, arrays, strings, finite numbers,
  booleans and null. Integers fit in 64 bits (what SQLite and PostgreSQL JSON keep
  exactly); floats are finite.
- **Strings** are valid Unicode (no lone surrogates) without NUL characters (PostgreSQL
  cannot store them).
- **Nesting** is at most :data:`MAX_DEPTH` levels; a document (a profile update, a
  trigger's or an event's data) is at most :data:`MAX_DOCUMENT_BYTES` as JSON.
- **Ids** (people, events, anonymous visitors) are 1 to :data:`MAX_ID_LENGTH` characters,
  not only blanks, without control characters.
- **Timestamps** are Unix seconds between 1970 and the year 9999 (Customer.io's unit; a
  value in milliseconds is out of that range and refused), or aware datetimes.

Each check returns a list of problems, one line each, phrased "field: expected X, found
Y", or raises :class:`~definitions.errors.InvalidRequestError` with them (the ``require_``
functions). Pure: no I/O, safe in workflow code.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeAlias

from definitions.errors import InvalidRequestError

__all__ = [
    "MAX_DEPTH",
    "MAX_DOCUMENT_BYTES",
    "MAX_ID_LENGTH",
    "MAX_TIMESTAMP",
    "MIN_TIMESTAMP",
    "JSONValue",
    "check_document",
    "check_id",
    "check_json",
    "check_text",
    "check_timestamp",
    "dumps",
    "loads",
    "require_document",
    "require_id",
    "require_timestamp",
]

JSONValue: TypeAlias = str | int | float | bool | list["JSONValue"] | dict[str, "JSONValue"] | None
"""A JSON value as Python holds it (what ``json.loads`` gives)."""

MAX_DEPTH = 32
"""How deep objects and arrays may nest (a flat object is depth 1)."""

MAX_DOCUMENT_BYTES = 256 * 1024
"""The largest profile update, trigger data or event data, as compact JSON."""

MAX_ID_LENGTH = 255
"""The longest person, event or anonymous id (the store's column width)."""

MIN_TIMESTAMP = 0.0
"""1970-01-01T00:00:00Z in Unix seconds."""

MAX_TIMESTAMP = 253402300799.0
"""9999-12-31T23:59:59Z in Unix seconds: anything later is not a time in seconds."""

_INT_MIN = -(2**63)
_INT_MAX = 2**63 - 1
_SHOWN = 40


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _text_problem(text: str) -> str | None:
    """What makes a string unusable, or None when it is fine."""
    if "\x00" in text:
        return "text without NUL characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"valid Unicode text, found a lone surrogate at character {exc.start}"
    return None


def check_text(text: str, where: str) -> list[str]:
    """Problems with a string that will be stored: valid Unicode, no NUL."""
    problem = _text_problem(text)
    if problem is None:
        return []
    return [f"{where}: expected {problem}"]


def check_json(value: object, where: str, *, depth: int = 0) -> list[str]:
    """Problems with a JSON value (see the module's rules), each naming its path.

    Args:
        value: what to check.
        where: the field's name, used as the start of each problem's path.
        depth: how deep ``value`` already is (for nested calls).

    """
    problems: list[str] = []
    _walk(value, where, depth, problems)
    return problems


def _walk(value: object, where: str, depth: int, problems: list[str]) -> None:  # noqa: C901  (one branch per JSON type, each with its limit)
    if len(problems) >= 20:  # enough to act on; a hostile value could have millions
        return
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            problems.append(
                f"{where}: expected an integer that fits in 64 bits, "
                f"found one of {value.bit_length()} bits"
            )
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            problems.append(f"{where}: expected a finite number, found {value!r}")
        return
    if isinstance(value, str):
        problem = _text_problem(value)
        if problem is not None:
            problems.append(f"{where}: expected {problem}")
        return
    if isinstance(value, Mapping | list | tuple):
        if depth >= MAX_DEPTH:
            problems.append(f"{where}: expected at most {MAX_DEPTH} levels of nesting, found more")
            return
        if isinstance(value, Mapping):
            for key, item in value.items():
                if not isinstance(key, str):
                    problems.append(f"{where}: expected text keys, found {_shown(key)}")
                    continue
                problem = _text_problem(key)
                if problem is not None:
                    problems.append(f"{where}: expected keys in {problem}, key {_shown(key)}")
                    continue
                _walk(item, f"{where}.{key}", depth + 1, problems)
        else:
            for index, item in enumerate(value):
                _walk(item, f"{where}[{index}]", depth + 1, problems)
        return
    problems.append(f"{where}: expected a JSON value, found {type(value).__name__}")


def dumps(value: object) -> str:
    """Compact JSON as the store writes it (refusing NaN and Infinity)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"expected a JSON number, found {name} (JSON has no NaN or Infinity)")


def loads(text: str | bytes) -> Any:  # noqa: ANN401  (JSON of any shape: callers check it, check_json)
    """Parse JSON strictly (RFC 8259): no NaN or Infinity, valid UTF-8, bounded nesting.

    The values it returns still need :func:`check_json` (a number like ``1e400``
    parses to infinity, a string may hold a lone surrogate).

    Raises:
        ValueError: saying what is wrong, with the position where the parser knows it.

    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(
                f"expected UTF-8, found byte 0x{text[exc.start]:02x} at position {exc.start}"
            ) from None
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError(f"expected at most {MAX_DEPTH} levels of nesting, found more") from None
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"expected JSON: {exc.msg} (line {exc.lineno} column {exc.colno})"
        ) from None


def check_document(value: object, where: str, *, limit: int = MAX_DOCUMENT_BYTES) -> list[str]:
    """Problems with a mapping of JSON values (attributes, trigger or event data)."""
    if not isinstance(value, Mapping):
        return [f"{where}: expected a mapping, found {type(value).__name__}"]
    problems = check_json(value, where)
    if problems:
        return problems
    size = len(dumps(value).encode("utf-8"))
    if size > limit:
        return [f"{where}: expected at most {limit} bytes as JSON, found {size}"]
    return []


def require_document(
    value: object, where: str, *, limit: int = MAX_DOCUMENT_BYTES
) -> dict[str, Any]:
    """A checked mapping (None is an empty one), or :class:`InvalidRequestError`."""
    if value is None:
        return {}
    problems = check_document(value, where, limit=limit)
    if problems:
        raise InvalidRequestError(problems)
    assert isinstance(value, dict)  # check_document refuses anything else
    return dict(value)


def check_id(value: object, where: str = "id", *, limit: int = MAX_ID_LENGTH) -> list[str]:
    """Problems with a person, event or anonymous id.

    With a larger ``limit``, the same rules check a run, trigger or message id to look up.
    """
    if not isinstance(value, str):
        return [f"{where}: expected an id (text), found {_shown(value)}"]
    if not value.strip():
        return [f"{where}: expected a non-empty id, found {_shown(value)}"]
    if len(value) > limit:
        return [f"{where}: expected at most {limit} characters, found {len(value)}"]
    problem = _text_problem(value)
    if problem is not None:
        return [f"{where}: expected {problem}"]
    for index, char in enumerate(value):
        if ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0:
            return [
                f"{where}: expected an id without control characters, "
                f"found {char!r} at character {index}"
            ]
    return []


def require_id(value: object, where: str = "id", *, limit: int = MAX_ID_LENGTH) -> str:
    """A checked id, or :class:`InvalidRequestError`."""
    problems = check_id(value, where, limit=limit)
    if problems:
        raise InvalidRequestError(problems)
    return str(value)


def check_timestamp(value: object, where: str = "timestamp") -> list[str]:
    """Problems with a timestamp: Unix seconds in range, or a datetime."""
    if value is None or isinstance(value, datetime):
        return []
    if isinstance(value, bool) or not isinstance(value, int | float):
        return [f"{where}: expected Unix seconds (a number), found {_shown(value)}"]
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{where}: expected Unix seconds (a finite number), found {value!r}"]
    if not MIN_TIMESTAMP <= value <= MAX_TIMESTAMP:
        in_ms = MAX_TIMESTAMP < value <= MAX_TIMESTAMP * 1000
        hint = " (milliseconds? timestamps are in seconds)" if in_ms else ""
        return [
            f"{where}: expected Unix seconds between {MIN_TIMESTAMP:.0f} and "
            f"{MAX_TIMESTAMP:.0f}, found {value!r}{hint}"
        ]
    return []


def require_timestamp(value: object, where: str = "timestamp") -> datetime | None:
    """A timestamp as an aware datetime (naive ones are UTC), or None when not given.

    Raises:
        InvalidRequestError: naming the field when it is not a usable time.

    """
    problems = check_timestamp(value, where)
    if problems:
        raise InvalidRequestError(problems)
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    assert isinstance(value, int | float)  # check_timestamp refuses anything else
    return datetime.fromtimestamp(value, UTC)
