"""What every step kind provides, and the interface its interpreter code runs against.

A step kind is a :class:`StepKind`: its YAML schema, its compiled dataclass, how it
compiles and how it runs, all typed by its own spec and step (``StepKind[SendSpec,
SendStep]``). Its interpreter code is written against :class:`Runner`, whose operations
are typed by the data they take — a send step, a condition, a :class:`Question` — never
``Any``.

A kind that needs data of its own from the store (each recipient's timezone, say) declares
a :class:`Question` in its module: the activity's name, input and result, as pure data.
``Runner.ask`` calls that activity for the members in batches; the activity itself is
registered from the activities side (:mod:`activities.steps`), so this layer never
imports it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

from pydantic_core import PydanticCustomError

from definitions.diagnostics import describe_value

if TYPE_CHECKING:
    from pydantic import BaseModel

    from definitions.compile_context import CompileContext
    from definitions.conditions import Condition
    from definitions.plan import Plan
    from definitions.source import Located
    from definitions.steps.send import SendStep
    from definitions.values import JSONValue

__all__ = ["Question", "Runner", "Shape", "Step", "StepKind", "check_step_id"]

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


class Step(Protocol):
    """What every compiled step has: its id and its kind's name."""

    @property
    def id(self) -> str:
        """The step's id: shown in status, the timeline and the Temporal UI."""

    @property
    def kind(self) -> str:
        """The name of its :class:`StepKind`."""


InputT = TypeVar("InputT")
ResultT = TypeVar("ResultT")
AnswerT = TypeVar("AnswerT")


@dataclass(frozen=True)
class Question(Generic[InputT, ResultT, AnswerT]):
    """What a step kind asks an activity about each member: pure data, read by both sides.

    The workflow calls the activity named ``activity`` with an ``input`` for a batch of
    members and reads one answer per member, in their order, from its ``result``; the
    activity is registered under the same name from :mod:`activities.steps`.
    """

    activity: str
    """The activity's name (the Temporal UI and the histories show it)."""
    input: type[InputT]
    """The activity's input: a dataclass naming the batch's recipients."""
    result: type[ResultT]
    """The activity's result: a dataclass holding an answer per recipient."""
    answers: Callable[[ResultT], list[AnswerT]]
    """The answers in a result, one per recipient of the batch, in their order."""
    timeout: timedelta = timedelta(minutes=2)
    """The activity's start-to-close timeout."""
    batch: int = 1000
    """Recipients per activity."""
    before_typed_results: Question[InputT, Any, AnswerT] | None = None
    """The same question as runs started before typed activity results asked it (a bare
    result under another name); only ``window`` has one, new kinds never need it."""


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

    async def send(self, step: SendStep) -> None:
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

    async def check(self, condition: Condition, summary: str) -> list[str]:
        """The members a condition holds for now (evaluated for all at once)."""

    async def ask(
        self,
        question: Question[InputT, ResultT, AnswerT],
        request: Callable[[list[str], datetime], InputT],
        summary: str,
    ) -> dict[str, AnswerT]:
        """Each member's answer to a question, from its activity (in batches).

        ``request`` makes the activity's input for a batch of members, given the workflow's
        time now; ``summary`` is what the Temporal UI shows.
        """

    async def wait_each(
        self, seconds: dict[str, float], summary: str, opened: Callable[[list[str]], None]
    ) -> None:
        """Each member waits their own number of seconds (rounded to the second).

        Members due at the same moment wait on one timer and go on together; ``opened`` is
        called for each such set as it goes on.
        """

    def bucket(self, salt: str, recipient_id: str) -> float:
        """A number in [0, 100) fixed for a recipient and salt (for splits)."""

    def record(
        self,
        step: str,
        kind: str,
        outcome: str,
        members: list[str] | None = None,
        **detail: JSONValue,
    ) -> None:
        """Add an entry to members' timelines (by default every member's)."""

    def route(self, members: list[str], sequence: str | None) -> None:
        """Members continue in a sequence of the plan (None: after this step) on their own."""

    def exit(self, reason: str, members: list[str] | None = None) -> None:
        """Members (by default every member) leave the journey now."""


SpecT = TypeVar("SpecT")
StepT = TypeVar("StepT", bound=Step)

Shape = Literal["box", "decision", "end"]
"""How a step is drawn in the journey's graph; an ``end`` step ends its path."""


def _no_branches(step: Step) -> list[tuple[str, str | None]]:
    return []


@dataclass(frozen=True)
class StepKind(Generic[SpecT, StepT]):
    """One kind of step: its YAML key, schema, compiled form and interpreter code."""

    name: str
    """The YAML key that introduces the step (``send``, ``wait``…)."""
    spec: type[SpecT]
    """The pydantic model of the step as written in YAML."""
    step: type[StepT]
    """The compiled, serialisable dataclass the workflow receives."""
    compile: Callable[[SpecT, CompileContext, Located], StepT]
    """Turn a validated spec into its compiled step (reporting problems to the context)."""
    run: Callable[[StepT, Runner], Awaitable[None]]
    """Run a compiled step."""
    label: Callable[[StepT], str]
    """A short reading of the compiled step, for graphs and the Temporal UI."""
    branches: Callable[[StepT], list[tuple[str, str | None]]] = _no_branches
    """The sequences a step may continue into, as (label, sequence id; None: straight on)."""
    shape: Shape = "box"
    """How the graph draws it."""
    models: tuple[type[BaseModel], ...] = ()
    """Pydantic models of its own that nest steps, rebuilt once every kind is known."""
