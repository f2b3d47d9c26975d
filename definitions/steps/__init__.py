"""The step kinds of the journey language, registered in one place.

A new step kind is a new module here that defines ``KIND`` plus one entry in ``KINDS``.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Discriminator, Field, Tag

from definitions.steps import branch, exit, send, split, wait, wait_for, window
from definitions.steps.base import Runner, StepKind

__all__ = ["KINDS", "AnyStep", "AnyStepSpec", "Runner", "StepKind", "step_kind_of"]

KINDS: dict[str, StepKind] = {
    kind.name: kind
    for kind in (
        send.KIND,
        wait.KIND,
        wait_for.KIND,
        branch.KIND,
        split.KIND,
        window.KIND,
        exit.KIND,
    )
}


def step_kind_of(value: Any) -> str | None:
    """The tag of a step as written (a mapping) or validated (a spec); None if unknown."""
    if isinstance(value, dict):
        found = [name for name in KINDS if name in value]
        return f"step:{found[0]}" if len(found) == 1 else None
    for name, kind in KINDS.items():
        if isinstance(value, kind.spec):
            return f"step:{name}"
    return None


_spec_union: Any = Union[tuple(Annotated[k.spec, Tag(f"step:{k.name}")] for k in KINDS.values())]  # noqa: UP007
_step_union: Any = Union[tuple(k.step for k in KINDS.values())]  # noqa: UP007

AnyStepSpec = Annotated[
    _spec_union,
    Discriminator(
        step_kind_of, custom_error_type="not_a_step", custom_error_message="expected a step"
    ),
]
"""Any step as written in YAML, told apart by which kind key it has."""

AnyStep = Annotated[_step_union, Field(discriminator="kind")]
"""Any compiled step, told apart by its ``kind`` field."""

for _kind in KINDS.values():
    if hasattr(_kind.spec, "model_rebuild"):
        _kind.spec.model_rebuild(_types_namespace={"AnyStepSpec": AnyStepSpec})
split.SplitPathSpec.model_rebuild(_types_namespace={"AnyStepSpec": AnyStepSpec})
split.SplitSpec.model_rebuild(force=True)
