"""``window: business_hours`` — wait until a time window in the recipient's timezone.

The recipient's timezone is the ``timezone`` attribute of their profile (an IANA name such
as ``Europe/Paris``); UTC when it is missing or unknown. The step asks :data:`DELAYS` —
how long until the window opens for each member — and waits that long for each; the
activity answering it is :mod:`activities.steps.window`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import field_validator, model_validator

from definitions.diagnostics import describe_value, shown
from definitions.model import SchemaModel, invalid
from definitions.steps.base import Question, Runner, StepKind, check_step_id

if TYPE_CHECKING:
    from definitions.compile_context import CompileContext
    from definitions.source import Located

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_SETS = {"weekdays": DAY_NAMES[:5], "weekends": DAY_NAMES[5:], "every_day": DAY_NAMES}
_BETWEEN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)\s*-\s*([01]\d|2[0-4]):([0-5]\d)$")


class WindowSpec(SchemaModel):
    """``days``: weekdays, weekends, every_day or a list of mon…sun; ``between``: HH:MM-HH:MM."""

    window: str
    days: str | list[str] = "every_day"
    between: str = "00:00-24:00"

    _id = field_validator("window")(check_step_id)

    @field_validator("days")
    @classmethod
    def _days(cls, value: str | list[str]) -> str | list[str]:
        names = [value] if isinstance(value, str) else value
        for name in names:
            if name not in DAY_NAMES and not (isinstance(value, str) and name in _DAY_SETS):
                choices = ", ".join([*_DAY_SETS, *DAY_NAMES])
                raise invalid(f"expected days as one of {choices}, found {describe_value(name)}")
        return value

    @field_validator("between")
    @classmethod
    def _between(cls, value: str) -> str:
        match = _BETWEEN.match(value)
        if not match or (match.group(3) == "24" and match.group(4) != "00"):
            raise invalid(f"expected a time range like 09:00-17:00, found {shown(value)}")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> WindowSpec:
        start, end = _minutes(self.between)
        if start >= end:
            raise invalid(
                f"expected the window to end after it starts, found {shown(self.between)}"
            )
        return self


def _minutes(between: str) -> tuple[int, int]:
    match = _BETWEEN.match(between)
    assert match is not None
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    return h1 * 60 + m1, h2 * 60 + m2


@dataclass(frozen=True)
class WindowStep:
    """A compiled window: weekdays as 0 (Monday) to 6, minutes since local midnight."""

    id: str
    days: tuple[int, ...]
    start_minute: int
    end_minute: int
    label: str
    kind: Literal["window"] = "window"


def _compile(spec: WindowSpec, ctx: CompileContext, where: Located) -> WindowStep:
    names = _DAY_SETS.get(spec.days, (spec.days,)) if isinstance(spec.days, str) else spec.days
    start, end = _minutes(spec.between)
    days = tuple(sorted({DAY_NAMES.index(n) for n in names}))
    shown = spec.days if isinstance(spec.days, str) else ",".join(spec.days)
    return WindowStep(spec.window, days, start, end, f"{shown} {spec.between}")


def zone(name: object) -> ZoneInfo:
    """The timezone called ``name``, or UTC when it is missing or unknown."""
    if isinstance(name, str) and name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo("UTC")


def seconds_until_open(step: WindowStep, now: datetime, timezone: object) -> float:
    """Seconds from ``now`` (aware) until the window is open in ``timezone``; 0 if open now."""
    local = now.astimezone(zone(timezone))
    for offset in range(8):
        day = (local + timedelta(days=offset)).date()
        if day.weekday() not in step.days:
            continue
        midnight = datetime(day.year, day.month, day.day, tzinfo=local.tzinfo)
        opens = midnight + timedelta(minutes=step.start_minute)
        closes = midnight + timedelta(minutes=step.end_minute)
        if local < closes:
            # Subtract in UTC: datetimes sharing a tzinfo subtract as wall clocks (DST).
            return max(0.0, (opens.astimezone(UTC) - now.astimezone(UTC)).total_seconds())
    raise ValueError(f"window {step.id} never opens")  # unreachable: days is never empty


@dataclass(frozen=True)
class WindowManyInput:
    """Seconds until a window opens, for many recipients."""

    step: WindowStep
    recipient_ids: list[str]
    now: datetime


@dataclass(frozen=True)
class WindowManyResult:
    """Seconds until the window opens for each recipient, in the order they were given."""

    seconds: list[float] = field(default_factory=list)


WINDOW_MANY = "window_delays"
"""The activity runs started before typed results ask (a bare list of seconds)."""
WINDOW_MANY_V2 = "window_delays_v2"
"""The activity runs ask since typed results (a :class:`WindowManyResult`)."""

DELAYS: Question[WindowManyInput, WindowManyResult, float] = Question(
    activity=WINDOW_MANY_V2,
    input=WindowManyInput,
    result=WindowManyResult,
    answers=lambda result: result.seconds,
    before_typed_results=Question(
        activity=WINDOW_MANY,
        input=WindowManyInput,
        result=list[float],
        answers=lambda seconds: seconds,
    ),
)
"""How long until the window opens, for each member (in seconds; 0 when open now)."""


async def _run(step: WindowStep, runner: Runner) -> None:

    def opened(members: list[str]) -> None:
        runner.record(step.id, "window", "open", members, window=step.label)

    delays = await runner.ask(
        DELAYS,
        lambda chunk, now: WindowManyInput(step, chunk, now),
        f"{step.id}: when does {step.label} open?",
    )
    await runner.wait_each(delays, f"{step.id}: wait for {step.label}", opened)


KIND: StepKind[WindowSpec, WindowStep] = StepKind(
    name="window",
    spec=WindowSpec,
    step=WindowStep,
    compile=_compile,
    run=_run,
    label=lambda s: f"wait for window {s.label}",
)
