"""Checking what trigger() is given before anything starts."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from definitions.errors import InvalidRecipientError, InvalidRequestError

__all__ = ["check_data", "parse_condition", "parse_recipients"]

MAX_ID_LENGTH = 255


def parse_recipients(recipients: Iterable[Any]) -> list[tuple[str, dict[str, Any]]]:
    """Recipients as (id, profile fields), or an error naming every bad one.

    Args:
        recipients: ids, or mappings with an ``id`` and profile fields.

    Raises:
        InvalidRecipientError: listing each bad recipient by its position.

    """
    if isinstance(recipients, str | bytes | Mapping):
        raise InvalidRecipientError(
            [f"recipients: expected a list of ids or mappings, found {type(recipients).__name__}"]
        )
    parsed: list[tuple[str, dict[str, Any]]] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(recipients):
        where = f"recipients[{index}]"
        if isinstance(item, Mapping):
            rid = item.get("id")
            fields = {k: v for k, v in item.items() if k != "id"}
        else:
            rid, fields = item, {}
        if not isinstance(rid, str) or not rid.strip():
            shown = "no 'id'" if isinstance(item, dict) and "id" not in item else repr(rid)
            problems.append(
                f"{where}: expected an id (a non-empty string) or a mapping "
                f"with an 'id', found {shown}"
            )
            continue
        if len(rid) > MAX_ID_LENGTH:
            problems.append(
                f"{where}: expected an id of at most {MAX_ID_LENGTH} characters, found {len(rid)}"
            )
            continue
        if rid in seen:
            problems.append(
                f"{where}: expected each recipient once, found {rid!r} again "
                f"(first at recipients[{seen[rid]}])"
            )
            continue
        try:
            json.dumps(fields)
        except (TypeError, ValueError) as exc:
            problems.append(f"{where}: expected profile fields that are JSON values, {exc}")
            continue
        seen[rid] = index
        parsed.append((rid, fields))
    if not parsed and not problems:
        problems.append("recipients: expected at least one recipient, found none")
    if problems:
        raise InvalidRecipientError(problems)
    return parsed


def parse_condition(raw: Any, name: str) -> Any:
    """A condition from JSON data, or an error in the words ``journeys validate`` uses.

    Raises:
        InvalidRequestError: naming each problem.

    """
    from pydantic import TypeAdapter, ValidationError

    from definitions.conditions import Condition
    from definitions.errors_map import diagnostics_from
    from definitions.source import SourceFile

    try:
        return TypeAdapter(Condition).validate_python(raw)
    except ValidationError as exc:
        source = SourceFile(name, "", raw)
        problems = [f"{name}: {d.message}" for d in diagnostics_from(exc, source, None)]
        raise InvalidRequestError(problems) from None


def check_data(data: Any, name: str = "data") -> dict[str, Any]:
    """Trigger or event data: a JSON-serialisable mapping."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidRequestError([f"{name}: expected a mapping, found {type(data).__name__}"])
    try:
        json.dumps(data)
    except (TypeError, ValueError) as exc:
        raise InvalidRequestError([f"{name}: expected JSON values, {exc}"]) from None
    return data
