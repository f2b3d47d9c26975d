"""The step kinds of the journey language, registered in one place.

A step kind is one module here and one entry in ``_MODULES``. The module defines:

- its YAML schema, a :class:`~definitions.model.SchemaModel` keyed by the kind's name
  (``window: business_hours``), and its compiled, frozen dataclass with a ``kind`` literal;
- ``_compile(spec, ctx, where)``, reporting problems to the compile context;
- ``_run(step, runner)``, written against :class:`~definitions.steps.base.Runner` only;
- ``KIND = StepKind(name=..., spec=..., step=..., compile=..., run=..., label=...)``, with
  ``branches`` (the sequences it may go into), ``shape`` (how the graph draws it) and
  ``models`` (its own models nesting steps) where they apply.

Validation (the discriminated union of specs, "unknown step kind" and its suggestions),
compiling, the plan's step union, the interpreter, ``journeys graph`` and the Temporal UI's
details all read ``KINDS``; nothing else names a kind. A step that runs on the runner's
operations (send, sleep, wait for an event, check a condition, route, exit) needs nothing
more. One that needs data of its own from the store, as ``window`` does (each recipient's
timezone), also needs an activity: its input and result in :mod:`definitions.contract`,
the activity in :mod:`activities`, and a typed runner operation calling it
(``Runner.wait_window``). Runs started before ``cohorts`` replay through
:mod:`definitions.legacy`, which keeps its own frozen copy of the kinds it knew.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Discriminator, Field, Tag

from definitions.steps import branch, exit, send, split, wait, wait_for, window
from definitions.steps.base import Runner, Step, StepKind

__all__ = ["KINDS", "AnyStep", "AnyStepSpec", "Runner", "Step", "StepKind", "step_kind_of"]

_MODULES = (send, wait, wait_for, branch, split, window, exit)
"""Every step kind's module, in the order "unknown step kind" lists them."""

KINDS: dict[str, StepKind[Any, Any]] = {module.KIND.name: module.KIND for module in _MODULES}
"""Each kind by its YAML key (its spec and step types differ: ``Any`` for the mapping)."""


def step_kind_of(value: object) -> str | None:
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

for _kind in KINDS.values():  # the specs that nest steps could not be built before now
    for _model in _kind.models:
        _model.model_rebuild(_types_namespace={"AnyStepSpec": AnyStepSpec})
    _kind.spec.model_rebuild(force=True, _types_namespace={"AnyStepSpec": AnyStepSpec})
