"""``wait: 1d`` — pause for a duration on a durable timer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import field_validator

from definitions.durations import parse_duration
from definitions.model import SchemaModel, check_duration
from definitions.steps.base import Runner, StepKind, check_step_id

if TYPE_CHECKING:
    from definitions.compile_context import CompileContext
    from definitions.source import Located


class WaitSpec(SchemaModel):
    """``- wait: 1d`` with an optional ``id:`` (default ``wait_1d``)."""

    wait: str
    id: str | None = None

    _duration = field_validator("wait")(check_duration)
    _id = field_validator("id")(lambda v: None if v is None else check_step_id(v))


@dataclass(frozen=True)
class WaitStep:
    """A compiled wait."""

    id: str
    duration: str
    seconds: float
    kind: Literal["wait"] = "wait"


def _compile(spec: WaitSpec, ctx: CompileContext, where: Located) -> WaitStep:
    step_id = spec.id or ctx.fresh_id(f"wait_{spec.wait}")
    return WaitStep(id=step_id, duration=spec.wait, seconds=parse_duration(spec.wait))


async def _run(step: WaitStep, runner: Runner) -> None:
    await runner.sleep(step.seconds, f"{step.id}: wait {step.duration}")
    runner.record(step.id, "wait", "waited", duration=step.duration)


KIND: StepKind[WaitSpec, WaitStep] = StepKind(
    name="wait",
    spec=WaitSpec,
    step=WaitStep,
    compile=_compile,
    run=_run,
    label=lambda s: f"wait {s.duration}",
)
