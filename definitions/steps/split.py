"""``split: subject_test`` — send recipients down paths by fixed random percentages.

The path is chosen from a hash of the journey, the step and the recipient id, so the same
recipient always lands on the same path, on every replay and every re-run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from definitions.model import SchemaModel, invalid
from definitions.steps.base import Runner, StepKind, check_step_id

if TYPE_CHECKING:
    from definitions.compile_context import CompileContext
    from definitions.source import Located


class SplitPathSpec(SchemaModel):
    """One path of a split: its share of recipients and its steps."""

    percent: float = Field(gt=0, le=100)
    name: str | None = None
    steps: list[AnyStepSpec] = Field(default_factory=list)  # type: ignore[name-defined]  # noqa: F821

    _name = field_validator("name")(lambda v: None if v is None else check_step_id(v))


class SplitSpec(SchemaModel):
    """A split as written in YAML; the percentages add up to 100."""

    split: str
    paths: list[SplitPathSpec] = Field(min_length=2)

    _id = field_validator("split")(check_step_id)

    @model_validator(mode="after")
    def _adds_up(self) -> SplitSpec:
        total = sum(p.percent for p in self.paths)
        if abs(total - 100) > 1e-9:
            raise invalid(f"expected the paths' percent to add up to 100, found {total:g}")
        return self


@dataclass(frozen=True)
class SplitPath:
    """A compiled path: its name, share and sequence (None when it has no steps)."""

    name: str
    percent: float
    sequence: str | None


@dataclass(frozen=True)
class SplitStep:
    """A compiled split."""

    id: str
    paths: tuple[SplitPath, ...]
    kind: Literal["split"] = "split"


def _compile(spec: SplitSpec, ctx: CompileContext, where: Located) -> SplitStep:
    paths = []
    for index, path in enumerate(spec.paths):
        name = path.name or f"path_{index + 1}"
        sequence = ctx.sequence(
            path.steps or None, (*where, "paths", index, "steps"), f"{spec.split}.{name}"
        )
        paths.append(SplitPath(name=name, percent=path.percent, sequence=sequence))
    return SplitStep(id=spec.split, paths=tuple(paths))


def choose_path(step: SplitStep, bucket: float) -> SplitPath:
    """The path whose cumulative share covers ``bucket`` (a number in [0, 100))."""
    edge = 0.0
    for path in step.paths:
        edge += path.percent
        if bucket < edge:
            return path
    return step.paths[-1]


async def _run(step: SplitStep, runner: Runner) -> None:
    salt = f"{runner.plan.journey}:{step.id}"
    chosen: dict[str, list[str]] = {}
    paths = {}
    for rid in runner.members:
        path = choose_path(step, runner.bucket(salt, rid))
        chosen.setdefault(path.name, []).append(rid)
        paths[path.name] = path
    for name, members in chosen.items():
        runner.record(step.id, "split", name, members)
        runner.route(members, paths[name].sequence)


KIND: StepKind[SplitSpec, SplitStep] = StepKind(
    name="split",
    spec=SplitSpec,
    step=SplitStep,
    compile=_compile,
    run=_run,
    label=lambda s: "split " + " / ".join(f"{p.percent:g}%" for p in s.paths),
    branches=lambda s: [(f"{p.name} {p.percent:g}%", p.sequence) for p in s.paths],
    shape="decision",
    models=(SplitPathSpec,),
)
