"""What every step kind provides, and the interface its interpreter code runs against."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pydantic_core import PydanticCustomError

if TYPE_CHECKING:
    from definitions.compiler import CompileContext
    from definitions.plan import Plan
    from definitions.source import Located

__all__ = ["Runner", "StepKind", "check_step_id"]

_STEP_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def check_step_id(value: str) -> str:
    """Validate a step id: a name that reads well in a URL, a log and the Temporal UI."""
    if not isinstance(value, str) or not _STEP_ID.match(value):
        raise PydanticCustomError(
            "journeys",
            "expected a step id (letters, digits, '_', '-', '.'; starting with a letter), "
            "found {found}",
            {"found": repr(value)},
        )
    return value


class Runner(Protocol):
    """The operations a step's interpreter code may use.

    A runner stands for whoever the plan runs for (one recipient today, a cohort later):
    step code says *what* happens, the runner decides how it is done durably.
    """

    @property
    def plan(self) -> Plan:
        """The plan being run."""

    async def run_sequence(self, sequence: str) -> None:
        """Run the steps of a sequence of the plan in order."""

    async def send(self, step: Any) -> None:
        """Deliver the message of a send step."""

    async def sleep(self, seconds: float, summary: str) -> None:
        """Wait a duration on a durable timer (ends early if the recipient exits)."""

    async def wait_for_event(self, event: str, timeout: float | None, summary: str) -> bool:
        """Wait for an event; True if it came before the timeout."""

    async def check(self, condition: Any, summary: str) -> bool:
        """Evaluate a condition against the recipient's current profile and events."""

    async def wait_window(self, step: Any) -> None:
        """Wait until a time window opens for the recipient."""

    def bucket(self, salt: str) -> float:
        """A number in [0, 100) fixed for this recipient and salt (for splits)."""

    def record(self, step: str, kind: str, outcome: str, **detail: Any) -> None:
        """Add an entry to the run's timeline."""

    def exit(self, reason: str) -> None:
        """Leave the journey now (raises)."""


@dataclass(frozen=True)
class StepKind:
    """One kind of step: its YAML key, schema, compiled form and interpreter code."""

    name: str
    """The YAML key that introduces the step (``send``, ``wait``…)."""
    spec: type[Any]
    """The pydantic model of the step as written in YAML."""
    step: type[Any]
    """The compiled, serialisable dataclass the workflow receives."""
    compile: Callable[[Any, CompileContext, Located], Any]
    """Turn a validated spec into its compiled step (reporting problems to the context)."""
    run: Callable[[Any, Runner], Awaitable[None]]
    """Run a compiled step."""
    label: Callable[[Any], str]
    """A short reading of the compiled step, for graphs and the Temporal UI."""
    branches: Callable[[Any], list[tuple[str, str]]] = lambda step: []
    """The sequences a step may continue into, as (label, sequence id)."""
