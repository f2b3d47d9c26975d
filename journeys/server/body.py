"""Request bodies read as RFC 8259 JSON, strictly, and checked against the value domain.

Python's ``json`` module takes more than JSON: ``NaN``, ``Infinity``, numbers that
overflow to infinity (``1e400``), escapes of lone surrogates (``ud800``), nesting as deep
as the interpreter's stack. Any of them, once stored, makes the person who carries it unreadable.
A body is therefore:

- UTF-8 text (else 400, with the offset of the first bad byte);
- JSON (else 400, with the line and column);
- made of values :mod:`definitions.values` accepts — finite numbers, 64-bit integers,
  valid Unicode without NUL, nesting within bounds (else 422 naming the field, e.g.
  ``data.amount: expected a finite number, found nan``).

The routes then check their own fields (ids, timestamps, documents) with the same module.
"""

from __future__ import annotations

import json

from fastapi import Request

from definitions.errors import InvalidRequestError
from definitions.values import MAX_DEPTH, JSONValue, check_json
from journeys.server.errors import RequestError

__all__ = ["ENVELOPE_DEPTH", "StrictRequest", "parse_json"]

ENVELOPE_DEPTH = 3
"""Levels of a body around the documents it carries (``batch`` → ``[i]`` → ``attributes``).

The body as a whole may nest that much more than a document; each document is then held
to :data:`~definitions.values.MAX_DEPTH` by its route."""


def parse_json(raw: bytes) -> JSONValue:
    """The JSON value of a body, refusing what is not strict JSON in the value domain.

    Raises:
        RequestError: 400 when the body is not UTF-8 JSON, 422 when it nests too deep or
            has an integer too long to read.
        InvalidRequestError: a value outside the domain, naming where it is.

    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        found = f"the byte 0x{raw[exc.start]:02x} at {exc.start}"
        raise RequestError(400, [f"body: expected UTF-8 text, found {found}"]) from None
    try:
        value: JSONValue = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RequestError(
            400, [f"body: expected JSON, {exc.msg.lower()} at line {exc.lineno} column {exc.colno}"]
        ) from None
    except RecursionError:
        raise RequestError(
            422, [f"body: expected at most {MAX_DEPTH} levels of nesting, found more"]
        ) from None
    except ValueError:  # an integer beyond the interpreter's digit limit
        raise RequestError(
            422, ["body: expected integers that fit in 64 bits, found a much longer one"]
        ) from None
    # NaN, Infinity and 1e400 parse as non-finite floats and "\ud800" as a lone surrogate:
    # the walk finds them with their path.
    problems = check_json(value, "body", depth=-ENVELOPE_DEPTH)
    if problems:
        raise InvalidRequestError(problems)
    return value


def is_json(content_type: str | None) -> bool:
    """Whether a Content-Type names JSON (``application/json``, ``application/x+json``)."""
    if content_type is None:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class StrictRequest(Request):
    """A request whose ``json()`` is :func:`parse_json` (what FastAPI reads bodies with)."""

    _strict: JSONValue

    async def json(self) -> JSONValue:
        """The body, parsed once, strictly."""
        if not hasattr(self, "_strict"):
            self._strict = parse_json(await self.body())
        return self._strict

    async def check_body(self) -> None:
        """Refuse a body that is not JSON: 415 for another media type, then parse it.

        Raises:
            RequestError: 415, or what :func:`parse_json` raises.

        """
        if not await self.body():
            return  # the route's model says whether a body is required
        content_type = self.headers.get("content-type")
        if not is_json(content_type):
            raise RequestError(
                415,
                [f"content-type: expected application/json, found {content_type or 'none'}"],
            )
        await self.json()
