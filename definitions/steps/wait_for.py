"""``wait_for: activation`` — wait for an event, at most a timeout."""

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


class WaitForSpec(SchemaModel):
    """Wait for ``event``; after ``timeout`` go on, or leave with ``on_timeout: exit``."""

    wait_for: str
    event: str
    timeout: str | None = None
    on_timeout: Literal["continue", "exit"] = "continue"

    _id = field_validator("wait_for")(check_step_id)
    _timeout = field_validator("timeout")(lambda v: None if v is None else check_duration(v))


@dataclass(frozen=True)
class WaitForStep:
    """A compiled wait_for."""

    id: str
    event: str
    timeout: str | None
    timeout_seconds: float | None
    on_timeout: str
    kind: Literal["wait_for"] = "wait_for"


def _compile(spec: WaitForSpec, ctx: CompileContext, where: Located) -> WaitForStep:
    return WaitForStep(
        id=spec.wait_for,
        event=spec.event,
        timeout=spec.timeout,
        timeout_seconds=parse_duration(spec.timeout) if spec.timeout else None,
        on_timeout=spec.on_timeout,
    )


async def _run(step: WaitForStep, runner: Runner) -> None:
    limit = f" (at most {step.timeout})" if step.timeout else ""

    def arrived(members: list[str]) -> None:
        runner.record(step.id, "wait_for", "event arrived", members, event=step.event)

    late = await runner.wait_for_event(
        step.event, step.timeout_seconds, f"{step.id}: wait for {step.event}{limit}", arrived
    )
    if not late:
        return
    runner.record(step.id, "wait_for", "timed out", late, event=step.event)
    if step.on_timeout == "exit":
        runner.exit(f"{step.id}: {step.event} did not happen within {step.timeout}", late)


def _label(step: WaitForStep) -> str:
    return f"wait for {step.event}" + (f" (≤ {step.timeout})" if step.timeout else "")


KIND: StepKind[WaitForSpec, WaitForStep] = StepKind(
    name="wait_for", spec=WaitForSpec, step=WaitForStep, compile=_compile, run=_run, label=_label
)
