"""From YAML files to plans: load, validate, resolve references, report every problem.

A journeys directory holds ``<name>.yaml`` journeys, ``segments.yaml`` (named conditions)
and ``templates/<name>.yaml`` (messages). :class:`Library` reads it; :meth:`Library.compile`
turns one journey into a :class:`~definitions.plan.Plan` or raises
:class:`~definitions.errors.DefinitionError` listing every problem at once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from temporalio.contrib.pydantic import pydantic_data_converter

from definitions.channels import CHANNELS
from definitions.compile_context import TEMPLATES_DIR, CompileContext
from definitions.conditions import (
    Condition,
    SegmentCondition,
)
from definitions.diagnostics import Diagnostic, closest, listing, shown
from definitions.durations import parse_duration
from definitions.errors import DefinitionError, UnknownJourneyError
from definitions.errors_map import diagnostics_from
from definitions.limits import (
    MAX_PLAN_BYTES,
    MAX_PROBLEMS_PER_FILE,
)
from definitions.model import SchemaModel, check_duration, invalid
from definitions.plan import MAIN, Plan
from definitions.segment_graph import Segments
from definitions.source import Located, SourceFile, load_yaml
from definitions.steps import AnyStepSpec, nests_steps, spec_adapter
from definitions.templates import (
    CompiledTemplate,
    TemplateSpec,
    syntax_errors,
    template_model,
)
from definitions.values import MAX_DOCUMENT_BYTES, check_json, dumps

__all__ = ["JourneySpec", "Library", "Loaded", "SegmentsSpec"]

SEGMENTS_FILE = "segments.yaml"


class TriggerSpec(SchemaModel):
    """What starts a journey by itself: an event, or entering a segment."""

    event: str | None = None
    segment: str | None = None

    @model_validator(mode="after")
    def _one(self) -> TriggerSpec:
        if (self.event is None) == (self.segment is None):
            raise invalid(
                "expected one of 'event' or 'segment' in trigger, found "
                + ("both" if self.event else "neither")
            )
        return self


class EntryLimit(SchemaModel):
    """``entry: {at_most_once_per: 7d}``."""

    at_most_once_per: str

    _duration = field_validator("at_most_once_per")(check_duration)


@nests_steps
class JourneySpec(SchemaModel):
    """A journey file as written in YAML."""

    journey: str
    description: str = ""
    topic: str | None = None
    trigger: TriggerSpec | None = None
    entry: Annotated[
        Annotated[str, Tag("entry:text")] | Annotated[EntryLimit, Tag("entry:limit")],
        Discriminator(lambda v: "entry:text" if isinstance(v, str) else "entry:limit"),
    ] = "once"
    broadcast_id: int | None = None
    exit_when: Condition | None = None
    steps: list[AnyStepSpec] = Field(min_length=1)

    @field_validator("entry")
    @classmethod
    def _entry(cls, value: str | EntryLimit) -> str | EntryLimit:
        if isinstance(value, str) and value not in ("once", "every_time"):
            raise invalid(
                f"expected once, every_time or {{at_most_once_per: DURATION}}, found {shown(value)}"
            )
        return value


class ManualSegment(SchemaModel):
    """A segment whose members are added and removed by id (through the API or client)."""

    manual: Literal[True]
    description: str = ""


_M = TypeVar("_M", bound=BaseModel)


def _segment_kind(value: object) -> str:
    manual = isinstance(value, ManualSegment) or (isinstance(value, dict) and "manual" in value)
    return "seg:manual" if manual else "seg:condition"


SegmentDefinition = Annotated[
    Annotated[ManualSegment, Tag("seg:manual")] | Annotated[Condition, Tag("seg:condition")],
    Discriminator(_segment_kind),
]


class SegmentsSpec(SchemaModel):
    """``segments.yaml``: named conditions (or manual lists) journeys use as ``segment: NAME``."""

    segments: dict[str, SegmentDefinition] = Field(default_factory=dict)


def _validate(model: type[_M], source: SourceFile, problems: list[Diagnostic]) -> _M | None:
    if not isinstance(source.data, dict):
        found = "an empty file" if source.data is None else "a " + type(source.data).__name__
        problems.append(
            Diagnostic(source.path, 1, 1, f"expected a mapping at the top, found {found}")
        )
        return None
    try:
        return model.model_validate(source.data)
    except ValidationError as exc:
        problems.extend(diagnostics_from(exc, source, model))
        return None


def _in_order(problems: list[Diagnostic]) -> list[Diagnostic]:
    """Problems without repeats, file by file in the order they appear.

    A file with more than MAX_PROBLEMS_PER_FILE gets them and one line counting the rest.
    """
    ordered = sorted(dict.fromkeys(problems), key=lambda d: (d.file, d.line, d.column))
    shown_problems: list[Diagnostic] = []
    per_file: dict[str, int] = {}
    for problem in ordered:
        count = per_file[problem.file] = per_file.get(problem.file, 0) + 1
        if count <= MAX_PROBLEMS_PER_FILE:
            shown_problems.append(problem)
        elif count == MAX_PROBLEMS_PER_FILE + 1:
            rest = sum(1 for p in ordered if p.file == problem.file) - MAX_PROBLEMS_PER_FILE
            shown_problems.append(
                replace(problem, message=f"and {rest} more problems in this file, from here on")
            )
    return shown_problems


def _modified(path: Path) -> int:
    """A file's modification time; 0 when it is missing or cannot be looked at."""
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def _body_problems(body: object) -> list[str]:
    """A variant's JSON field (a webhook's body) must be a value of the value domain."""
    problems = [p.split(": ", 1)[1] for p in check_json(body, "body")]
    if not problems and body is not None:
        size = len(dumps(body).encode("utf-8"))
        if size > MAX_DOCUMENT_BYTES:
            problems.append(
                f"expected a body of at most {MAX_DOCUMENT_BYTES} bytes as JSON, found {size}"
            )
    return problems


def _plan_size(plan: Plan) -> int:
    """Bytes of the plan as a run's input, encoded by the converter every process uses."""
    payloads = pydantic_data_converter.payload_converter.to_payloads([plan])
    return sum(payload.ByteSize() for payload in payloads)


@dataclass
class Loaded:
    """A file of the directory as read: its source, its validated spec, its problems."""

    source: SourceFile | None
    spec: Any
    problems: list[Diagnostic]
    derived: Any = None
    """Worked out once per load: segments.yaml's :class:`Segments`; True for a checked template."""


class Library:
    """A directory of journeys, segments and templates.

    Args:
        directory: the folder holding ``<name>.yaml`` journeys.

    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._cache: dict[Path, tuple[float, Loaded]] = {}
        self._plans: dict[str, tuple[Any, tuple[Plan | None, list[Diagnostic]]]] = {}

    def names(self) -> list[str]:
        """The journeys defined here, by name (the file name without ``.yaml``)."""
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob("*.yaml") if p.name != SEGMENTS_FILE)

    def path_of(self, name: str) -> Path:
        """The file that defines journey ``name``."""
        return self.directory / f"{name}.yaml"

    def compile(self, name: str) -> Plan:
        """Compile a journey.

        Raises:
            UnknownJourneyError: no file defines it.
            DefinitionError: the journey, a template or a segment it uses is wrong.

        """
        if name not in self.names():
            raise UnknownJourneyError(name, self.names())
        plan, problems = self._compile(name)
        if problems or plan is None:
            raise DefinitionError(problems)
        return plan

    def check(self) -> list[Diagnostic]:
        """Every problem in every journey, template and segment file here."""
        problems: list[Diagnostic] = []
        for name in self.names():
            problems.extend(self._compile(name)[1])
        problems.extend(self._segment_problems())
        for path in sorted((self.directory / TEMPLATES_DIR).glob("*.yaml")):
            problems.extend(self.loaded_template(path.stem)[1].problems)
        return _in_order(problems)

    # -- loading, cached by modification time --------------------------------------------

    def _load(self, path: Path, model: type[BaseModel]) -> Loaded:
        try:
            stamp = path.stat().st_mtime_ns
        except FileNotFoundError:
            if not path.is_symlink():
                return Loaded(None, None, [])
            stamp = 0  # a broken link: load_yaml says so
        except OSError:
            stamp = 0  # a link loop, a file we may not read: load_yaml says so
        cached = self._cache.get(path)
        if cached and cached[0] == stamp:
            return cached[1]
        source, problems = load_yaml(self._shown(path))
        spec = _validate(model, source, problems) if not problems else None
        loaded = Loaded(source, spec, problems)
        self._cache[path] = (stamp, loaded)
        return loaded

    def _shown(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(Path.cwd()))
        except (ValueError, OSError, RuntimeError):  # elsewhere; a link loop
            return str(path)

    def segments(self) -> dict[str, Any]:
        """The segments of segments.yaml, resolved: name → SegmentCondition.

        Raises:
            DefinitionError: segments.yaml is wrong.

        """
        loaded = self.segments_file()
        problems = self._segment_problems()
        if problems:
            raise DefinitionError(_in_order(problems))
        graph = self.segment_graph()
        if graph is None or loaded.spec is None:
            return {}
        return {name: graph.segment(name) for name in loaded.spec.segments}

    def _segment_problems(self) -> list[Diagnostic]:
        """segments.yaml's problems: the file's, then each segment that cannot be filled in."""
        loaded = self.segments_file()
        graph = self.segment_graph()
        if graph is None or loaded.source is None or loaded.spec is None:
            return list(loaded.problems)
        source = loaded.source
        return [
            source.diagnostic(("segments", name), problem, at_key=True)
            for name in loaded.spec.segments
            if (problem := graph.info[name].problem) is not None
        ]

    def segment_graph(self) -> Segments | None:
        """The segments of segments.yaml, measured; None when the file is wrong."""
        loaded = self.segments_file()
        if loaded.problems:
            return None
        if loaded.derived is None:
            known: dict[str, Any] = loaded.spec.segments if loaded.spec is not None else {}
            manual = [name for name, value in known.items() if isinstance(value, ManualSegment)]
            loaded.derived = Segments(known, manual)
        graph: Segments = loaded.derived
        return graph

    def segments_file(self) -> Loaded:
        """segments.yaml, read and validated (cached until the file changes)."""
        return self._load(self.directory / SEGMENTS_FILE, SegmentsSpec)

    def loaded_template(self, name: str) -> tuple[CompiledTemplate | None, Loaded]:
        """A template file, read and checked once per change: the template (None when wrong)."""
        loaded = self._load(self.directory / TEMPLATES_DIR / f"{name}.yaml", template_model())
        if loaded.spec is None or loaded.source is None:
            return None, loaded
        spec: TemplateSpec = loaded.spec
        variants = {
            channel: getattr(spec, channel).model_dump(exclude_none=True)
            for channel in CHANNELS
            if getattr(spec, channel, None) is not None
        }
        if not loaded.problems and loaded.derived is None:
            loaded.derived = True  # checked once per load: loaded_template runs for every use
            for channel, fields in variants.items():
                for key in CHANNELS[channel].json_fields:
                    for message in _body_problems(fields.get(key)):
                        field_at: Located = (channel, key)
                        loaded.problems.append(loaded.source.diagnostic(field_at, message))
            for where, message in syntax_errors(spec.engine, variants):
                loaded.problems.append(loaded.source.diagnostic(where, message))
        compiled = CompiledTemplate(
            name=name, engine=spec.engine, variants=variants, strict=spec.strict
        )
        return (None if loaded.problems else compiled), loaded

    def template(self, name: str) -> CompiledTemplate:
        """A template by name.

        Raises:
            DefinitionError: it does not exist or its file is wrong.

        """
        if name not in self.template_names():
            names = listing(self.template_names())
            raise DefinitionError(
                [
                    Diagnostic(
                        str(self.directory / TEMPLATES_DIR),
                        0,
                        0,
                        f"unknown template {shown(name)}: expected one of {names}"
                        f"{closest(name, self.template_names())}",
                    )
                ]
            )
        template, loaded = self.loaded_template(name)
        if template is None:
            raise DefinitionError(loaded.problems)
        return template

    def template_names(self) -> list[str]:
        """The templates defined here, by name."""
        return sorted(p.stem for p in (self.directory / TEMPLATES_DIR).glob("*.yaml"))

    def _stamp(self, name: str) -> tuple[tuple[str, int], ...]:
        """What a compiled journey depends on, with modification times."""
        paths = [
            self.path_of(name),
            self.directory / SEGMENTS_FILE,
            *sorted((self.directory / TEMPLATES_DIR).glob("*.yaml")),
        ]
        return tuple((str(p), _modified(p)) for p in paths)

    def _compile(self, name: str) -> tuple[Plan | None, list[Diagnostic]]:
        stamp = self._stamp(name)
        cached = self._plans.get(name)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        result = self._compile_now(name)
        self._plans[name] = (stamp, result)
        return result

    def _compile_now(self, name: str) -> tuple[Plan | None, list[Diagnostic]]:
        loaded = self._load(self.path_of(name), JourneySpec)
        problems = list(loaded.problems)
        if loaded.source is None:
            return None, problems
        if loaded.spec is None:
            if loaded.source.data is not None:
                problems.extend(self._partial(loaded.source))
            return None, _in_order(problems)
        spec: JourneySpec = loaded.spec
        if spec.journey != name:
            problems.append(
                loaded.source.diagnostic(
                    ("journey",),
                    f"expected the journey to be named {name!r} like its file, "
                    f"found {shown(spec.journey)}",
                )
            )
        ctx = CompileContext(self, loaded.source, topic=spec.topic)
        exit_when = ctx.condition(spec.exit_when, ("exit_when",)) if spec.exit_when else None
        ctx.sequence(spec.steps, ("steps",), MAIN)
        trigger_segment = None
        if spec.trigger is not None and spec.trigger.segment is not None:
            named = SegmentCondition(segment=spec.trigger.segment)
            trigger_segment = ctx.condition(named, ("trigger",))
        problems.extend(ctx.problems)
        if problems:
            return None, _in_order(problems)
        digest = hashlib.sha256(loaded.source.text.encode())
        for text in ctx.used_sources:
            digest.update(text.encode())
        entry = spec.entry if isinstance(spec.entry, str) else "interval"
        plan = Plan(
            journey=name,
            digest=digest.hexdigest()[:16],
            steps=ctx.steps,
            sequences=ctx.sequences,
            description=spec.description,
            exit_when=exit_when,
            templates=ctx.templates,
            trigger_event=spec.trigger.event if spec.trigger else None,
            trigger_segment=trigger_segment,
            entry=entry,
            entry_interval=(
                parse_duration(spec.entry.at_most_once_per)
                if isinstance(spec.entry, EntryLimit)
                else None
            ),
            broadcast_id=spec.broadcast_id,
        )
        size = _plan_size(plan)
        if size > MAX_PLAN_BYTES:
            message = (
                f"expected a compiled journey of at most {MAX_PLAN_BYTES} bytes (runs receive "
                f"it as their input), found {size}: use fewer steps or smaller templates"
            )
            return None, [loaded.source.diagnostic(("journey",), message)]
        return plan, []

    def _partial(self, source: SourceFile) -> list[Diagnostic]:
        """Compile the steps that validate on their own, so their problems show up too."""
        ctx = CompileContext(self, source)
        data = source.data if isinstance(source.data, dict) else {}
        raw_steps = data.get("steps")
        steps: list[Any] = raw_steps if isinstance(raw_steps, list) else []
        for index, raw in enumerate(steps):
            try:
                spec = spec_adapter().validate_python(raw)
            except ValidationError:
                continue
            ctx.sequence([spec], ("steps",), f"partial.{index}", start=index)
        return ctx.problems
