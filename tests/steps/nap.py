"""A step kind for the tests only: ``nap: siesta`` — each recipient naps as their profile says.

It needs data of its own from the store — how long each recipient naps, the number in a
profile attribute (``nap`` by default) — so it declares a :class:`Question` (:data:`NAPS`:
the activity's name, input and result, as pure data) and its answer (:data:`ANSWER`, a
function of the store). Registering the kind (``definitions.steps.register(KIND)``) and
the answer (``ANSWERS.register(ANSWER)``) is all it takes; nothing else in the code base
names it. A recipient with no nap leaves the journey (``no nap``); the others wait their
nap, those with the same one together, and go on.

In a plugin the two halves would live in two modules, one per layer (as ``window`` does:
``definitions/steps/window.py`` and ``activities/steps/window.py``); a test may hold both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from pydantic import field_validator

from activities.steps import Answer
from definitions.model import SchemaModel
from definitions.steps import Question, Runner, StepKind
from definitions.steps.base import check_step_id

if TYPE_CHECKING:
    from definitions.compile_context import CompileContext
    from definitions.source import Located
    from journeys.store import Store

__all__ = ["ANSWER", "KIND", "NAPS", "NapInput", "NapResult", "NapSpec", "NapStep"]


class NapSpec(SchemaModel):
    """``- nap: siesta`` with an optional ``attribute:`` (default ``nap``)."""

    nap: str
    attribute: str = "nap"

    _id = field_validator("nap")(check_step_id)


@dataclass(frozen=True)
class NapStep:
    """A compiled nap."""

    id: str
    attribute: str
    kind: Literal["nap"] = "nap"


@dataclass(frozen=True)
class NapInput:
    """How long do these recipients nap?"""

    attribute: str
    recipient_ids: list[str]


@dataclass(frozen=True)
class NapResult:
    """Seconds each recipient naps (same order); None: they do not nap."""

    seconds: list[float | None] = field(default_factory=list)


NAPS: Question[NapInput, NapResult, float | None] = Question(
    activity="test_naps",
    input=NapInput,
    result=NapResult,
    answers=lambda result: result.seconds,
)


def _compile(spec: NapSpec, ctx: CompileContext, where: Located) -> NapStep:
    return NapStep(spec.nap, spec.attribute)


async def _run(step: NapStep, runner: Runner) -> None:
    naps = await runner.ask(
        NAPS, lambda chunk, now: NapInput(step.attribute, chunk), f"{step.id}: how long a nap?"
    )
    awake = [rid for rid, seconds in naps.items() if seconds is None]
    runner.record(step.id, "nap", "awake", awake)
    runner.exit("no nap", awake)

    def woke(members: list[str]) -> None:
        runner.record(step.id, "nap", "woke", members)

    nappers = {rid: seconds for rid, seconds in naps.items() if seconds is not None}
    await runner.wait_each(nappers, f"{step.id}: nap", woke)


KIND: StepKind[NapSpec, NapStep] = StepKind(
    name="nap",
    spec=NapSpec,
    step=NapStep,
    compile=_compile,
    run=_run,
    label=lambda s: f"nap as long as {s.attribute} says",
)


async def _naps(store: Store, request: NapInput) -> NapResult:
    """The activities' side: each recipient's attribute, when it is a number."""
    profiles = await store.profiles.get_many(request.recipient_ids)
    found = [profiles.get(rid, {}).get(request.attribute) for rid in request.recipient_ids]
    return NapResult(
        [
            float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None
            for v in found
        ]
    )


ANSWER = Answer(NAPS, _naps)
