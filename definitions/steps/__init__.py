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
timezone), declares a :class:`~definitions.steps.base.Question` in its module (the
activity's name, input and result) and calls ``Runner.ask``; the activity answering it
is one module in ``activities/steps/`` and one line registering it there. Runs started
before ``cohorts`` replay through :mod:`definitions.legacy`, which keeps its own frozen
copy of the kinds it knew.

A kind defined outside this package (a test's, a plugin's) is added with
:func:`register`, which rebuilds the validation of steps to include it.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, Union

from pydantic import (
    BaseModel,
    Discriminator,
    GetCoreSchemaHandler,
    PlainValidator,
    Tag,
    TypeAdapter,
)
from pydantic_core import CoreSchema

from definitions.steps import branch, exit, send, split, wait, wait_for, window
from definitions.steps.base import Question, Runner, Step, StepKind

__all__ = [
    "KINDS",
    "AnyStep",
    "AnyStepSpec",
    "Question",
    "Runner",
    "Step",
    "StepKind",
    "kind_of_spec",
    "nests_steps",
    "register",
    "spec_adapter",
    "step_kind_of",
    "unregister",
]

_MODULES = (send, wait, wait_for, branch, split, window, exit)
"""Every step kind's module, in the order "unknown step kind" lists them."""

KINDS: dict[str, StepKind[Any, Any]] = {module.KIND.name: module.KIND for module in _MODULES}
"""Each kind by its YAML key (its spec and step types differ: ``Any`` for the mapping)."""

_Model = TypeVar("_Model", bound=BaseModel)
_BUILT_IN = frozenset(KINDS)
_NESTING: list[type[BaseModel]] = []
"""Models outside the kinds whose fields hold steps (the journey file), rebuilt with them."""


def step_kind_of(value: object) -> str | None:
    """The tag of a step as written (a mapping) or validated (a spec); None if unknown."""
    if isinstance(value, dict):
        found = [name for name in KINDS if name in value]
        return f"step:{found[0]}" if len(found) == 1 else None
    for name, kind in KINDS.items():
        if isinstance(value, kind.spec):
            return f"step:{name}"
    return None


def kind_of_spec(spec: object) -> StepKind[Any, Any]:
    """The kind of a validated spec."""
    return next(kind for kind in KINDS.values() if type(spec) is kind.spec)


def _spec_union() -> Any:  # noqa: ANN401  (a type built at run time)
    union: Any = Union[tuple(Annotated[k.spec, Tag(f"step:{k.name}")] for k in KINDS.values())]  # noqa: UP007
    return Annotated[
        union,
        Discriminator(
            step_kind_of, custom_error_type="not_a_step", custom_error_message="expected a step"
        ),
    ]


if TYPE_CHECKING:
    AnyStepSpec = Any
else:

    class AnyStepSpec:
        """Any step as written in YAML, told apart by which kind key it has.

        Its schema is the union of the kinds registered when a model using it is built
        (:func:`register` rebuilds them), so a field typed by it never holds a stale union.
        """

        @classmethod
        def __get_pydantic_core_schema__(
            cls, source: object, handler: GetCoreSchemaHandler
        ) -> CoreSchema:
            return handler(_spec_union())


_STEP_ADAPTERS: dict[type, TypeAdapter[Any]] = {}
"""Each kind's compiled step, made when it is registered: in the workflow sandbox a kind's
module outside ``definitions`` is not imported, so its annotations could not be read."""


def _compiled_step(value: object) -> Any:  # noqa: ANN401  (any kind's step)
    """A compiled step, told apart by its ``kind`` among the kinds registered now."""
    name = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    kind = KINDS.get(name) if isinstance(name, str) else None
    if kind is None:
        raise ValueError(f"expected a step of a known kind, found kind {name!r}")
    if isinstance(value, kind.step):
        return value
    return _STEP_ADAPTERS[kind.step].validate_python(value)


AnyStep = Annotated[Any, PlainValidator(_compiled_step)]
"""Any compiled step, told apart by its ``kind`` field when a plan is read (a kind
registered later included: a plan's payload is read by a type adapter made once)."""


@cache
def spec_adapter() -> TypeAdapter[Any]:
    """Validates one step as written, for the kinds registered now."""
    return TypeAdapter(AnyStepSpec)


def nests_steps(model: type[_Model]) -> type[_Model]:
    """Mark a model whose fields hold steps (``AnyStepSpec``): rebuilt when kinds change."""
    _NESTING.append(model)
    _rebuild((model,))
    return model


def _rebuild(models: tuple[type[BaseModel], ...]) -> None:
    namespace = {"AnyStepSpec": AnyStepSpec}
    for model in models:  # drop every schema first: none may embed another's stale one
        model.__pydantic_complete__ = False
        if "__pydantic_core_schema__" in model.__dict__:
            delattr(model, "__pydantic_core_schema__")
    for model in models:
        model.model_rebuild(force=True, _types_namespace=namespace)


def _build() -> None:
    """Make the union of specs and every model nesting steps know the kinds now."""
    spec_adapter.cache_clear()
    kinds = list(KINDS.values())
    for kind in kinds:
        if kind.step not in _STEP_ADAPTERS:
            _STEP_ADAPTERS[kind.step] = TypeAdapter(kind.step)
    _rebuild((*(m for k in kinds for m in k.models), *(k.spec for k in kinds), *_NESTING))


def register(kind: StepKind[Any, Any]) -> StepKind[Any, Any]:
    """Add a step kind defined outside this package (again: a no-op); returns it.

    Raises:
        ValueError: another kind already has its name.

    """
    known = KINDS.get(kind.name)
    if known is not None and known is not kind:
        raise ValueError(f"a step kind named {kind.name!r} is already registered")
    if known is None:
        KINDS[kind.name] = kind
        _build()
    return kind


def unregister(name: str) -> None:
    """Remove a kind added by :func:`register` (tests that register one of their own)."""
    if name in KINDS and name not in _BUILT_IN:
        del KINDS[name]
        _build()


_build()  # the specs that nest steps could not be built before now
