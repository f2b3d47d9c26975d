"""Checking what trigger() is given before anything is written or started."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from definitions.errors import InvalidRecipientError, InvalidRequestError
from definitions.values import (
    MAX_ID_LENGTH,
    JSONValue,
    check_document,
    check_id,
    require_document,
)
from journeys.store.devices import check_devices

if TYPE_CHECKING:
    from definitions.conditions import Condition
    from definitions.plan import Plan

__all__ = [
    "MAX_ID_LENGTH",
    "MAX_INPUT_BYTES",
    "check_data",
    "check_input_size",
    "parse_condition",
    "parse_per_recipient_data",
    "parse_recipients",
]

_MAX_PROBLEMS = 50
"""Problems listed at most: a list of a million bad recipients says enough with fifty."""


def parse_recipients(recipients: object) -> list[tuple[str, dict[str, JSONValue]]]:
    """Recipients as (id, profile fields), or an error naming every bad one.

    Args:
        recipients: ids, or mappings with an ``id`` and profile fields.

    Raises:
        InvalidRecipientError: listing each bad recipient by its position.

    """
    if isinstance(recipients, str | bytes | Mapping) or not isinstance(recipients, Iterable):
        raise InvalidRecipientError(
            [f"recipients: expected a list of ids or mappings, found {type(recipients).__name__}"]
        )
    parsed: list[tuple[str, dict[str, JSONValue]]] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(recipients):
        if len(problems) >= _MAX_PROBLEMS:
            problems.append("recipients: more problems not shown")
            break
        where = f"recipients[{index}]"
        either = f"{where}: expected an id (a non-empty string) or a mapping with an 'id'"
        if isinstance(item, Mapping):
            if "id" not in item:
                problems.append(f"{either}, found no 'id'")
                continue
            rid = item["id"]
            fields = {k: v for k, v in item.items() if k != "id"}
        elif not isinstance(item, str):
            problems.append(f"{either}, found {repr(item)[:40]}")
            continue
        else:
            rid, fields = item, {}
        wrong = check_id(rid, f"{where}.id" if isinstance(item, Mapping) else where)
        if wrong:
            problems += wrong
            continue
        if rid in seen:
            problems.append(
                f"{where}: expected each recipient once, found {rid!r} again "
                f"(first at recipients[{seen[rid]}])"
            )
            continue
        wrong = (
            check_document(fields, where)
            or check_devices(fields.get("devices"), f"{where}.devices")[1]
        )
        if wrong:
            problems += wrong
            continue
        seen[rid] = index
        parsed.append((rid, fields))
    if not parsed and not problems:
        problems.append("recipients: expected at least one recipient, found none")
    if problems:
        raise InvalidRecipientError(problems)
    return parsed


def parse_per_recipient_data(
    data: object, recipients: Iterable[str]
) -> dict[str, dict[str, JSONValue]]:
    """``per_recipient_data`` of trigger(): recipient id → a mapping, for known recipients.

    Raises:
        InvalidRecipientError: naming each entry that is not usable.

    """
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise InvalidRecipientError(
            [
                "per_recipient_data: expected a mapping of recipient ids, "
                f"found {type(data).__name__}"
            ]
        )
    known = set(recipients)
    problems: list[str] = []
    parsed: dict[str, dict[str, JSONValue]] = {}
    for rid, values in data.items():
        if len(problems) >= _MAX_PROBLEMS:
            problems.append("per_recipient_data: more problems not shown")
            break
        where = f"per_recipient_data[{rid!r}]"
        if rid not in known:
            problems.append(f"{where}: expected one of the recipients, found an unknown id")
            continue
        wrong = check_document(values, where)
        if wrong:
            problems += wrong
            continue
        parsed[rid] = dict(values)
    if problems:
        raise InvalidRecipientError(problems)
    return parsed


def parse_condition(raw: object, name: str) -> Condition:
    """A condition from JSON data, or an error in the words ``journeys validate`` uses.

    Raises:
        InvalidRequestError: naming each problem.

    """
    from pydantic import TypeAdapter, ValidationError

    from definitions.conditions import Condition
    from definitions.errors_map import diagnostics_from
    from definitions.source import SourceFile

    wrong = check_document(raw, name)
    if wrong:
        raise InvalidRequestError(wrong)
    try:
        return TypeAdapter(Condition).validate_python(raw)
    except ValidationError as exc:
        source = SourceFile(name, "", raw)
        problems = [f"{name}: {d.message}" for d in diagnostics_from(exc, source, None)]
        raise InvalidRequestError(problems) from None


def check_data(data: object, name: str = "data") -> dict[str, JSONValue]:
    """Trigger or event data: a mapping of JSON values (see :mod:`definitions.values`).

    Raises:
        InvalidRequestError: naming the field that is wrong.

    """
    return require_document(data, name)


MAX_INPUT_BYTES = 1_800_000
"""The largest workflow input trigger() starts: Temporal refuses payloads over 2 MB."""


def check_input_size(
    plan: Plan,
    data: dict[str, JSONValue],
    people: Sequence[tuple[str, Mapping[str, JSONValue]]],
    personal: Mapping[str, Mapping[str, JSONValue]],
    cohort_size: int | None,
) -> None:
    """Refuse a trigger whose workflow inputs Temporal would not take.

    A run's input carries the compiled plan and the data; a cohort's carries every
    member's own data too, ``cohort_size`` members at most.

    Args:
        plan: the compiled journey.
        data: the trigger's data.
        people: the recipients, in order.
        personal: each recipient's own data.
        cohort_size: members per cohort when the trigger runs as cohorts, else None.

    Raises:
        InvalidRequestError: saying which input is too large and by how much.

    """
    from temporalio.contrib.pydantic import pydantic_data_converter

    from definitions import contract as c

    [payload] = pydantic_data_converter.payload_converter.to_payloads(
        [c.JourneyInput(plan, "", "trg_0000000000000000", data)]
    )
    base = len(payload.data)

    def own(rid: str) -> int:
        return len(rid) + len(json.dumps(personal.get(rid) or {}, ensure_ascii=False)) + 64

    if cohort_size is None:
        largest = max((own(rid) for rid, _ in people), default=0)
        if base + largest > MAX_INPUT_BYTES:
            raise InvalidRequestError(
                [
                    f"data: expected a run's input (the plan and the data) of at most "
                    f"{MAX_INPUT_BYTES} bytes, found {base + largest}"
                ]
            )
        return
    for start in range(0, len(people), cohort_size):
        page = people[start : start + cohort_size]
        size = base + sum(own(rid) for rid, _ in page)
        if size > MAX_INPUT_BYTES:
            raise InvalidRequestError(
                [
                    f"per_recipient_data: expected a cohort's input (the plan, the data and "
                    f"{len(page)} recipients' own data) of at most {MAX_INPUT_BYTES} bytes, "
                    f"found {size} for recipients[{start}:{start + len(page)}]; send less "
                    f"data per recipient or lower [cohorts] size"
                ]
            )
