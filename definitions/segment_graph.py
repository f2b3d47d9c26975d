"""Segments naming segments: cycles, chain length and size, measured before filling in.

A journey's plan carries its conditions with every named segment filled in, so the
segments of ``segments.yaml`` are measured first, once, without recursion: a cycle, a
chain longer than :data:`~definitions.limits.MAX_SEGMENT_CHAIN`, or a segment that
would fill in to more than :data:`~definitions.limits.MAX_CONDITION_PARTS` parts or
:data:`~definitions.limits.MAX_CONDITION_DEPTH` levels is a problem of that segment (and
of every segment that names it). Filling in is then bounded by those same limits, and
each segment is filled in once per compile and shared.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

from definitions.conditions import (
    AllCondition,
    AnyCondition,
    Condition,
    NotCondition,
    SegmentCondition,
    children,
)
from definitions.diagnostics import closest, listing, shown
from definitions.limits import MAX_CONDITION_DEPTH, MAX_CONDITION_PARTS, MAX_SEGMENT_CHAIN

__all__ = ["SegmentInfo", "Segments", "Shape", "shape"]


@dataclass(frozen=True)
class SegmentInfo:
    """What a segment becomes once the segments it names are filled in."""

    parts: int
    """Conditions in it (counted up to MAX_CONDITION_PARTS + 1)."""
    height: int
    """Levels of nesting (a segment with a plain condition is 2: the segment and it)."""
    chain: tuple[str, ...]
    """The longest chain of segments from this one (cut after MAX_SEGMENT_CHAIN + 1)."""
    cause: str | None = None
    """Why it cannot be filled in (a cycle, an unknown segment, a size), if it cannot."""

    @property
    def problem(self) -> str | None:
        """Why it cannot be filled in, chains too long included; None when it can."""
        if self.cause is None and len(self.chain) > MAX_SEGMENT_CHAIN:
            return (
                f"expected segments to name segments at most {MAX_SEGMENT_CHAIN} deep, "
                f"found {_chain_text(self.chain)}"
            )
        return self.cause


@dataclass
class Shape:
    """A condition as written: its own parts and levels, and the segments it names."""

    parts: int = 0
    height: int = 0
    references: list[tuple[str, int]] = field(default_factory=list)
    """Each segment named, with the level (1 = the top) of its ``segment:`` node."""


def shape(condition: Condition) -> Shape:
    """The shape of a condition as written (segments not filled in), without recursion."""
    result = Shape()
    pending = [(condition, 1)]
    while pending:
        node, level = pending.pop()
        result.parts += 1
        result.height = max(result.height, level)
        if isinstance(node, SegmentCondition):
            result.references.append((node.segment, level))
        pending.extend((child, level + 1) for child in children(node))
    return result


def _chain_text(chain: tuple[str, ...]) -> str:
    names = [shown(n)[1:-1] if len(n) > 40 else n for n in chain[: MAX_SEGMENT_CHAIN + 1]]
    return " -> ".join(names) + (" -> …" if len(chain) > MAX_SEGMENT_CHAIN + 1 else "")


class Segments:
    """The segments of a segments file, measured; fills them into conditions.

    Args:
        definitions: name → its condition model (anything, for manual segments).
        manual: the names of manual segments (members added by id; no condition).

    """

    def __init__(self, definitions: dict[str, Any], manual: Collection[str] = ()) -> None:
        self.definitions = definitions
        self.manual = frozenset(manual)
        self.info: dict[str, SegmentInfo] = {}
        self._filled: dict[str, SegmentCondition] = {}
        for name in definitions:
            self._measure(name)

    def _shape(self, name: str) -> Shape:
        if name in self.manual:
            return Shape()
        return shape(self.definitions[name])

    def _unknown(self, name: str) -> str:
        if not self.definitions:
            return f"unknown segment {shown(name)}: no segments yet: define it in segments.yaml"
        return (
            f"unknown segment {shown(name)}: expected one of {listing(self.definitions)}, "
            f"found {shown(name)}{closest(name, self.definitions)}"
        )

    def _measure(self, start: str) -> None:
        """Measure ``start`` and every segment below it (depth-first, with its own stack)."""
        if start in self.info:
            return
        stack: list[tuple[str, Iterator[tuple[str, int]]]] = []
        on_stack: list[str] = []
        on_stack_set: set[str] = set()

        def push(name: str) -> None:
            stack.append((name, iter(self._shape(name).references)))
            on_stack.append(name)
            on_stack_set.add(name)

        push(start)
        while stack:
            name, references = stack[-1]
            child = next((r for r, _ in references if r not in self.info), None)
            if child is None:
                stack.pop()
                on_stack_set.discard(on_stack.pop())
                self.info[name] = self._combine(name)
                continue
            if child not in self.definitions:
                self.info[child] = SegmentInfo(0, 0, (child,), self._unknown(child))
            elif child in on_stack_set:
                cycle = (*on_stack[on_stack.index(child) :], child)
                message = f"segment {shown(child)} refers to itself through {_chain_text(cycle)}"
                for member in cycle[:-1]:
                    self.info[member] = SegmentInfo(0, 0, cycle, message)
            else:
                push(child)

    def _combine(self, name: str) -> SegmentInfo:
        """A segment's measure from its shape and its (measured) references."""
        if name in self.info:  # on a cycle: already marked
            return self.info[name]
        own = self._shape(name)
        parts, height = 1 + own.parts, 1 + own.height
        chain: tuple[str, ...] = (name,)
        for reference, level in own.references:
            below = self.info[reference]
            if below.problem is not None:
                return SegmentInfo(0, 0, (name, *below.chain[: MAX_SEGMENT_CHAIN + 1]), below.cause)
            parts += below.parts - 1  # the reference node is the filled-in segment
            height = max(height, level + below.height)
            if len(below.chain) + 1 > len(chain):
                chain = (name, *below.chain[: MAX_SEGMENT_CHAIN + 1])
        parts = min(parts, MAX_CONDITION_PARTS + 1)
        problem = None
        if parts > MAX_CONDITION_PARTS:
            problem = (
                f"expected segment {shown(name)} to have at most {MAX_CONDITION_PARTS} "
                "conditions once the segments it names are filled in, found more"
            )
        elif height > MAX_CONDITION_DEPTH:
            problem = (
                f"expected segment {shown(name)} to nest at most {MAX_CONDITION_DEPTH} levels "
                f"once the segments it names are filled in, found {height}"
            )
        return SegmentInfo(parts, height, chain, problem)

    def measure(self, condition: Condition) -> tuple[int, int, list[tuple[str, str]]]:
        """Parts and levels of a condition once filled in, and the problems of its segments.

        Problems come as (segment named, message).
        """
        own = shape(condition)
        parts, height, problems = own.parts, own.height, []
        for reference, level in own.references:
            info = self.info.get(reference)
            if info is None:
                problems.append((reference, self._unknown(reference)))
                continue
            if info.problem is not None:
                problems.append((reference, info.problem))
                continue
            parts += info.parts - 1
            height = max(height, level - 1 + info.height)
        return parts, height, problems

    def fill(self, condition: Condition) -> Condition:
        """The condition with its segments filled in (only when :meth:`measure` found none)."""
        if isinstance(condition, SegmentCondition):
            return self.segment(condition.segment)
        if isinstance(condition, AllCondition):
            return AllCondition(all=[self.fill(c) for c in condition.all])
        if isinstance(condition, AnyCondition):
            return AnyCondition(any=[self.fill(c) for c in condition.any])
        if isinstance(condition, NotCondition):
            return NotCondition(not_=self.fill(condition.not_))
        return condition

    def segment(self, name: str) -> SegmentCondition:
        """A measured segment without problems, filled in (once; later calls share it)."""
        if name not in self._filled:
            self._filled[name] = (
                SegmentCondition(segment=name, manual=True)
                if name in self.manual
                else SegmentCondition(segment=name, condition=self.fill(self.definitions[name]))
            )
        return self._filled[name]
