"""The pydantic base every schema model of the journey language shares."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic_core import PydanticCustomError

from definitions.durations import parse_duration

__all__ = ["SchemaModel", "check_duration", "invalid"]


class SchemaModel(BaseModel):
    """Strict, immutable, unknown keys forbidden: ``wiat: 1d`` is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def invalid(message: str) -> PydanticCustomError:
    """A validation error whose message is shown to the user as it is."""
    return PydanticCustomError("journeys", message)


def check_duration(value: str) -> str:
    """Validate a duration string, keeping it as written."""
    try:
        parse_duration(value)
    except ValueError as exc:
        raise invalid(str(exc)) from None
    return value
