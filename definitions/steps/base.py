"""What every step kind provides, and the interface its interpreter code runs against."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pydantic_core import PydanticCustomError

from definitions.diagnostics import describe_value

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
            {"found": describe_value(value)},
        )
    return value


class Runner(Protocol):
    """The operations a step's interpreter code may use.

    A runner stands for the recipients at the step together (a group of a cohort; one
    recipient triggered alone is a cohort of one): step code says *what* happens to whom,
    the runner decides how it is done durably and in batches.
    """

    @property
    def plan(self) -> Plan:
        """The plan being run."""

    @property
    def members(self) -> list[str]:
        """The recipients at this step who are still in the journey."""

    async def send(self, step: Any) -> None:
        """Deliver the message of a send step to every member."""

    async def sleep(self, seconds: float, summary: str) -> None:
        """Wait a duration on one durable timer (members who exit meanwhile drop out)."""

    async def wait_for_event(
        self,
        event: str,
        timeout: float | None,
        summary: str,
        arrived: Callable[[list[str]], None],
    ) -> list[str]:
        """Wait for each member's event; returns those it did not come for in time.

        Members whose event comes go on at once, after ``arrived`` is called for them.
        """

    async def check(self, condition: Any, summary: str) -> list[str]:
        """The members a condition holds for now (evaluated for all at once)."""

    async def wait_window(self, step: Any, opened: Callable[[list[str]], None]) -> None:
        """Each member waits until a time window opens for them.

        ``opened`` is called for each set of members as they go on.
        """

    def bucket(self, salt: str, recipient_id: str) -> float:
        """A number in [0, 100) fixed for a recipient and salt (for splits)."""

    def record(
        self, step: str, kind: str, outcome: str, members: list[str] | None = None, **detail: Any
    ) -> None:
        """Add an entry to members' timelines (by default every member's)."""

    def route(self, members: list[str], sequence: str | None) -> None:
        """Members continue in a sequence of the plan (None: after this step) on their own."""

    def exit(self, reason: str, members: list[str] | None = None) -> None:
        """Members (by default every member) leave the journey now."""


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
