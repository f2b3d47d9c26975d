"""The delivery channels the language knows: what each one is, as pure data.

A channel is one module, ``activities/channels/<name>.py``, that defines a
:class:`ChannelSpec` — its name, its template variant, its settings section (on the shared
:class:`ChannelSettings` base), its secrets, its retry window and how a send addresses it —
beside the code that talks to its provider, and one line in ``activities/channels/__init__.py``
that registers the spec in :data:`CHANNELS`.

Everything else iterates :data:`CHANNELS`: the compiler (channel names, template variants),
the configuration (sections, secrets, batch sizes, retry windows), the worker (one task
queue per channel, its rate limit) and the command line. This module holds no channel of
its own and imports no provider library, so the language layer and the workflow sandbox
never see one; the registry is filled from above (``activities.channels``, which the
``journeys`` package and the worker import first).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from definitions.diagnostics import closest, shown
from definitions.durations import parse_duration
from definitions.model import SchemaModel, invalid

__all__ = [
    "CHANNELS",
    "MAX_RETRY_WINDOW",
    "MIN_RETRY_WINDOW",
    "ChannelRegistry",
    "ChannelSettings",
    "ChannelSpec",
    "check_channel",
]

MIN_RETRY_WINDOW = timedelta(seconds=1)
MAX_RETRY_WINDOW = timedelta(days=30)


class ChannelSettings(BaseModel):
    """What every channel's settings section has (``[email]``, ``[sms]``…)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_size: int = Field(default=250, ge=1, le=1000)
    """Recipients of a cohort per send activity on this channel."""
    retry_window: timedelta | None = None
    """How long transient failures are retried before the message fails (a duration such
    as ``"4h"`` or ``"2d"``, or seconds); default the channel's :attr:`ChannelSpec.retry_window`
    (24 hours for email, 4 hours for others)."""
    rate_limit: float | None = None
    """Messages per second across all workers (Temporal task-queue rate limit)."""

    @field_validator("retry_window", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return parse_duration(value)
            except ValueError as exc:
                raise ValueError(f"expected a duration such as 4h or 2d: {exc}") from None
        return value

    @field_validator("retry_window")
    @classmethod
    def _window_bounds(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and not MIN_RETRY_WINDOW <= value <= MAX_RETRY_WINDOW:
            raise ValueError("expected a retry window between 1 second and 30 days")
        return value


@dataclass(frozen=True)
class ChannelSpec:
    """A delivery channel, as the language, the configuration and the worker see it."""

    name: str
    """The channel's name: in ``channel:``/``fallback:``, template files, ``[name]`` settings,
    ``JOURNEYS_<NAME>_*`` variables and its task queue (``<queue>.send.<name>``)."""
    variant: type[SchemaModel]
    """The template variant: the fields a template gives this channel. A field named
    ``html`` is rendered HTML-escaped; one typed ``Any`` is a JSON value whose strings are
    templates (checked against the value domain); the others are template strings."""
    settings: type[ChannelSettings]
    """The ``[name]`` settings section (every key with a default)."""
    open: Callable[[Any], Any]
    """Builds the channel's sender (an ``activities.channels.base.Channel``) from its
    settings; called by the worker only."""
    secrets: tuple[str, ...] = ()
    """Settings keys read only from the environment (``JOURNEYS_<NAME>_<KEY>``)."""
    retry_window: timedelta = timedelta(hours=4)
    """How long transient failures are retried unless ``[name] retry_window`` says."""
    url: bool = False
    """Addressed by the send step's ``url`` (which it then requires; ``url`` and ``headers``
    are only allowed on sends with such a channel) instead of by the profile."""
    default_content: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    """What is sent from the message variables when the step names no template or the
    template has no variant for this channel; None: a template variant is required."""

    @property
    def json_fields(self) -> tuple[str, ...]:
        """The variant's fields that are JSON values rather than template strings."""
        return tuple(
            name for name, info in self.variant.model_fields.items() if info.annotation is Any
        )


class ChannelRegistry(Mapping[str, ChannelSpec]):
    """The channels of this process by name, in the order they were registered."""

    def __init__(self) -> None:
        self._specs: dict[str, ChannelSpec] = {}

    def register(self, spec: ChannelSpec) -> ChannelSpec:
        """Add a channel (again: a no-op); returns it.

        Raises:
            ValueError: another channel already has its name.

        """
        known = self._specs.get(spec.name)
        if known is not None and known is not spec:
            raise ValueError(f"a channel named {spec.name!r} is already registered")
        self._specs[spec.name] = spec
        return spec

    def unregister(self, name: str) -> None:
        """Remove a channel (tests that register one of their own)."""
        self._specs.pop(name, None)

    def __getitem__(self, name: str) -> ChannelSpec:
        return self._specs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def key(self) -> tuple[ChannelSpec, ...]:
        """What the registry holds, for caches of models built from it."""
        return tuple(self._specs.values())


CHANNELS = ChannelRegistry()
"""The channels of this process; ``activities.channels`` registers the built-in ones."""


def check_channel(value: str) -> str:
    """Validate a channel name against the known channels."""
    if not CHANNELS:  # a bug of the caller, not of the YAML
        raise RuntimeError("no channels are registered: import activities.channels first")
    if value not in CHANNELS:
        names = list(CHANNELS)
        raise invalid(
            f"expected a channel ({', '.join(names)}), found {shown(value)}{closest(value, names)}"
        )
    return value
