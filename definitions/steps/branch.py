"""``branch: plan_check`` — test a condition and continue down ``then`` or ``else``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from definitions.conditions import Condition, describe_condition
from definitions.model import SchemaModel, invalid
from definitions.steps.base import Runner, StepKind, check_step_id

if TYPE_CHECKING:
    from definitions.compile_context import CompileContext
    from definitions.source import Located


class BranchSpec(SchemaModel):
    """A branch as written in YAML."""

    branch: str
    if_: Condition = Field(alias="if")
    then: list[AnyStepSpec] | None = None  # type: ignore[name-defined]  # noqa: F821
    else_: list[AnyStepSpec] | None = Field(default=None, alias="else")  # type: ignore[name-defined]  # noqa: F821

    _id = field_validator("branch")(check_step_id)

    @model_validator(mode="after")
    def _has_a_way(self) -> BranchSpec:
        if self.then is None and self.else_ is None:
            raise invalid(
                "a branch needs somewhere to go: expected 'then' or 'else', found neither"
            )
        return self


@dataclass(frozen=True)
class BranchStep:
    """A compiled branch; each side is a sequence of the plan (None: go straight on)."""

    id: str
    condition: Condition
    then: str | None
    otherwise: str | None
    kind: Literal["branch"] = "branch"


def _compile(spec: BranchSpec, ctx: CompileContext, where: Located) -> BranchStep:
    condition = ctx.condition(spec.if_, (*where, "if"))
    then = ctx.sequence(spec.then, (*where, "then"), f"{spec.branch}.then")
    otherwise = ctx.sequence(spec.else_, (*where, "else"), f"{spec.branch}.else")
    return BranchStep(id=spec.branch, condition=condition, then=then, otherwise=otherwise)


async def _run(step: BranchStep, runner: Runner) -> None:
    members = runner.members
    matched = await runner.check(
        step.condition, f"{step.id}: {describe_condition(step.condition)}?"
    )
    chosen = set(matched)
    others = [m for m in members if m not in chosen]
    runner.record(step.id, "branch", "then", matched)
    runner.record(step.id, "branch", "else", others)
    runner.route(matched, step.then)
    runner.route(others, step.otherwise)


def _branches(step: BranchStep) -> list[tuple[str, str | None]]:
    return [("yes", step.then), ("no", step.otherwise)]


KIND: StepKind[BranchSpec, BranchStep] = StepKind(
    name="branch",
    spec=BranchSpec,
    step=BranchStep,
    compile=_compile,
    run=_run,
    label=lambda s: describe_condition(s.condition) + "?",
    branches=_branches,
    shape="decision",
)
