"""``exit: reason`` — leave the journey here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import field_validator

from definitions.model import SchemaModel
from definitions.steps.base import Runner, StepKind, check_step_id

if TYPE_CHECKING:
    from definitions.compile_context import CompileContext
    from definitions.source import Located


class ExitSpec(SchemaModel):
    """``- exit: not_interested``: the value is the step id, shown as the reason."""

    exit: str

    _id = field_validator("exit")(check_step_id)


@dataclass(frozen=True)
class ExitStep:
    """A compiled exit."""

    id: str
    kind: Literal["exit"] = "exit"


def _compile(spec: ExitSpec, ctx: CompileContext, where: Located) -> ExitStep:
    return ExitStep(id=spec.exit)


async def _run(step: ExitStep, runner: Runner) -> None:
    runner.exit(step.id)


KIND: StepKind[ExitSpec, ExitStep] = StepKind(
    name="exit",
    spec=ExitSpec,
    step=ExitStep,
    compile=_compile,
    run=_run,
    label=lambda s: f"exit ({s.id})",
    shape="end",
)
