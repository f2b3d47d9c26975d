"""The compiled plan: what a journey workflow receives instead of YAML.

A plan is flat: steps by id, and sequences (lists of step ids) that branches and splits
point into. It carries its templates and resolved segments, so a run never reads a file
and editing YAML never changes a run already in flight.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from definitions.conditions import Condition
from definitions.steps import AnyStep, Step
from definitions.templates import CompiledTemplate

__all__ = ["MAIN", "Plan"]

MAIN = "main"
"""The id of a plan's top-level sequence."""


@dataclass(frozen=True)
class Plan:
    """A journey compiled for execution."""

    journey: str
    """The journey's name."""
    digest: str
    """A hash of the sources the plan was compiled from (journey, templates, segments)."""
    steps: dict[str, AnyStep]
    """Every step of the journey, by id."""
    sequences: dict[str, list[str]]
    """Ordered step ids; ``main`` is the journey's top level."""
    description: str = ""
    """The journey's description."""
    exit_when: Condition | None = None
    """The goal: a recipient leaves as soon as this holds."""
    templates: dict[str, CompiledTemplate] = field(default_factory=dict)
    """The templates the send steps use, by name."""
    trigger_event: str | None = None
    """The event that starts this journey for the person who did it."""
    trigger_segment: Condition | None = None
    """The segment (a resolved SegmentCondition) whose new members start this journey."""
    entry: str = "once"
    """Who may enter again: ``once``, ``every_time`` or ``interval``."""
    entry_interval: float | None = None
    """With ``interval``: seconds that must pass between two entries of a person."""
    broadcast_id: int | None = None
    """The id Customer.io's broadcast API (``/v1/campaigns/{id}/triggers``) knows it by."""

    def step(self, step_id: str) -> Step:
        """The compiled step with this id."""
        step: Step = self.steps[step_id]
        return step
