"""What a step kind's compile function reports to and draws from while a journey compiles.

:class:`~definitions.compiler.Library` makes one :class:`CompileContext` per journey file; the
step kinds (``definitions/steps/``) call it to compile nested sequences, fill in conditions,
check templates and URLs, and report problems at their place in the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from definitions.channels import CHANNELS
from definitions.conditions import (
    AllCondition,
    AnyCondition,
    Condition,
    NotCondition,
    SegmentCondition,
)
from definitions.diagnostics import Diagnostic, closest, listing, shown
from definitions.limits import MAX_CONDITION_DEPTH, MAX_CONDITION_PARTS, MAX_STEP_NESTING
from definitions.segment_graph import shape
from definitions.source import Located, SourceFile
from definitions.steps import kind_of_spec
from definitions.templates import CompiledTemplate, render_string

if TYPE_CHECKING:
    from definitions.compiler import Library

__all__ = ["TEMPLATES_DIR", "CompileContext"]

TEMPLATES_DIR = "templates"
"""Where a journeys directory keeps its templates, one file per message."""


@dataclass
class CompileContext:
    """What a step's compile function reports to and draws from."""

    library: Library
    source: SourceFile
    topic: str | None = None
    """The journey's topic, the default of its send steps."""
    problems: list[Diagnostic] = field(default_factory=list)
    steps: dict[str, Any] = field(default_factory=dict)
    sequences: dict[str, list[str]] = field(default_factory=dict)
    templates: dict[str, CompiledTemplate] = field(default_factory=dict)
    used_sources: list[str] = field(default_factory=list)
    _where: dict[str, Located] = field(default_factory=dict)
    _nesting: int = 0

    def error(self, where: Located, message: str, *, at_key: bool = False) -> None:
        """Report a problem at a place in the journey file."""
        self.problems.append(self.source.diagnostic(where, message, at_key=at_key))

    def fresh_id(self, wanted: str) -> str:
        """``wanted``, or ``wanted_2``… when a step already has that id."""
        candidate, count = wanted, 1
        while candidate in self.steps or candidate in self._where:
            count += 1
            candidate = f"{wanted}_{count}"
        return candidate

    def sequence(
        self, specs: list[Any] | None, where: Located, name: str, *, start: int = 0
    ) -> str | None:
        """Compile a list of steps into a sequence of the plan; None when there are none."""
        if not specs:
            return None
        if self._nesting > MAX_STEP_NESTING:
            self.error(
                where,
                f"expected branch and split steps nested at most {MAX_STEP_NESTING} deep, "
                "found deeper",
            )
            return None
        self._nesting += 1
        try:
            return self._sequence(specs, where, name, start)
        finally:
            self._nesting -= 1

    def _sequence(self, specs: list[Any], where: Located, name: str, start: int) -> str:
        ids = []
        for index, spec in enumerate(specs):
            kind = kind_of_spec(spec)
            step_where = (*where, start + index)
            step = kind.compile(spec, self, step_where)
            if step.id in self._where:
                first = self.source.diagnostic(self._where[step.id], "").line
                self.error(
                    (*step_where, kind.name),
                    f"duplicate step id {shown(step.id)}: expected each id once, "
                    f"found it again (first on line {first})",
                )
                continue
            self._where[step.id] = (*step_where, kind.name)
            self.steps[step.id] = step
            ids.append(step.id)
        self.sequences[name] = ids
        return name

    def condition(self, condition: Condition, where: Located) -> Condition:
        """The condition with every segment it names filled in (reporting what cannot be).

        A condition beyond the limits once filled in (:data:`MAX_CONDITION_PARTS`,
        :data:`MAX_CONDITION_DEPTH`) is reported at ``where`` and left as written.
        """
        segments = self.library.segment_graph()
        if segments is None:
            self.problems.extend(self.library.segments_file().problems)
            return condition
        parts, height, problems = segments.measure(condition)
        for name, message in dict.fromkeys(problems):
            self.error(self._reference(condition, where, name), message)
        if problems:
            return condition
        if parts > MAX_CONDITION_PARTS:
            self.error(
                where,
                f"expected a condition of at most {MAX_CONDITION_PARTS} parts once the "
                f"segments it names are filled in, found {parts}",
            )
        elif height > MAX_CONDITION_DEPTH:
            self.error(
                where,
                f"expected a condition nested at most {MAX_CONDITION_DEPTH} levels once the "
                f"segments it names are filled in, found {height}",
            )
        else:
            if shape(condition).references:
                self._use_segments_file()
            return segments.fill(condition)
        return condition

    def _reference(self, condition: Condition, where: Located, name: str) -> Located:
        """Where the condition first names segment ``name`` (else ``where``)."""
        pending: list[tuple[Condition, Located]] = [(condition, where)]
        for node, at in pending:
            if isinstance(node, SegmentCondition):
                if node.segment == name:
                    return (*at, "segment")
            elif isinstance(node, AllCondition):
                pending.extend((c, (*at, "all", i)) for i, c in enumerate(node.all))
            elif isinstance(node, AnyCondition):
                pending.extend((c, (*at, "any", i)) for i, c in enumerate(node.any))
            elif isinstance(node, NotCondition):
                pending.append((node.not_, (*at, "not")))
        return where

    def _use_segments_file(self) -> None:
        loaded = self.library.segments_file()
        if loaded.source is not None and loaded.source.text not in self.used_sources:
            self.used_sources.append(loaded.source.text)

    def use_template(self, name: str, channel: str, where: Located) -> None:
        """Check that a template exists, parses and has a variant for the channel."""
        if name in self.templates:
            template: CompiledTemplate | None = self.templates[name]
            loaded = None
        else:
            known = self.library.template_names()
            if name not in known:
                missing = self.library.directory / TEMPLATES_DIR / f"{name}.yaml"
                expected = (
                    f"expected one of {listing(known)}, found {shown(name)}"
                    if known
                    else f"no templates yet: add {missing}"
                )
                self.error(
                    where, f"unknown template {shown(name)}: {expected}{closest(name, known)}"
                )
                return
            template, loaded = self.library.loaded_template(name)
            if loaded.problems:
                self.problems.extend(loaded.problems)
                return
        if template is None:
            return
        if channel not in template.variants and CHANNELS[channel].default_content is None:
            self.error(
                where,
                f"template {shown(name)} has no {channel} variant: expected key "
                f"{channel!r} in {TEMPLATES_DIR}/{name}.yaml, found none",
            )
            return
        if loaded is not None and loaded.source is not None:
            self.used_sources.append(loaded.source.text)
        self.templates[name] = template

    def check_url(self, url: str, where: Located) -> None:
        """A URL must be http(s), or a Liquid template that parses (rendered at send time)."""
        if "{{" in url or "{%" in url:
            try:
                render_string("liquid", url, {}, strict=False)
            except Exception as exc:
                self.error(where, f"expected a URL template that parses, found an error: {exc}")
            return
        if not url.startswith(("http://", "https://")):
            self.error(where, f"expected an http:// or https:// URL, found {shown(url)}")
