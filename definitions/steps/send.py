"""``send: welcome`` — deliver a message over a channel, falling back to others.

The channels are tried in order — ``channel``, then each of ``fallback`` — until one
delivers. A channel is passed over when the recipient has no (valid) address on it, has
opted out of it, or the provider rejects the message permanently; transient failures are
retried first. Preferences are checked at send time, not at trigger time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from definitions.channels import CHANNELS, check_channel
from definitions.diagnostics import shown
from definitions.model import SchemaModel, invalid
from definitions.steps.base import Runner, StepKind, check_step_id

if TYPE_CHECKING:
    from definitions.compile_context import CompileContext
    from definitions.source import Located


_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_FIELD = re.compile(r"^[\t\x20-\x7e]*$")


class SendSpec(SchemaModel):
    """A send step as written in YAML."""

    send: str
    channel: str
    template: str | None = None
    fallback: list[str] = Field(default_factory=list)
    url: str | None = None
    headers: dict[str, str] | None = None
    topic: str | None = None
    transactional: bool = False

    _id = field_validator("send")(check_step_id)
    _channel = field_validator("channel")(check_channel)

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for name, text in (value or {}).items():
            if not _TOKEN.match(name):
                raise invalid(
                    "expected header names of letters, digits and !#$%&'*+-.^_`|~, "
                    f"found {shown(name)}"
                )
            if not _FIELD.match(text):
                raise invalid(
                    f"expected the value of header {shown(name)} in printable ASCII "
                    f"(HTTP sends nothing else), found {shown(text)}"
                )
        return value

    @field_validator("fallback")
    @classmethod
    def _fallback(cls, value: list[str]) -> list[str]:
        for name in value:
            check_channel(name)
        return value

    @model_validator(mode="after")
    def _channel_needs(self) -> SendSpec:
        channels = [self.channel, *self.fallback]
        if len(set(channels)) != len(channels):
            raise invalid(
                f"expected each channel once in channel and fallback, found {', '.join(channels)}"
            )
        by_url = [c for c in channels if CHANNELS[c].url]
        if by_url and not self.url:
            raise invalid(f"{_a(by_url[0])} send needs a url: expected key 'url', found none")
        others = [c for c in channels if CHANNELS[c].default_content is None]
        if others and self.template is None:
            raise invalid(
                f"{_a(others[0])} send needs a template: expected key 'template', found none"
            )
        if not by_url:
            named = " or ".join(name for name, spec in CHANNELS.items() if spec.url)
            for key in ("url", "headers"):
                if getattr(self, key) is not None:
                    raise invalid(
                        f"expected no {key!r} on a send without a {named} ({key!r} is for {named}s)"
                    )
        return self


def _a(word: str) -> str:
    """A word with its indefinite article: "an email", "a webhook"."""
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


@dataclass(frozen=True)
class SendStep:
    """A compiled send: the template is carried in the plan, so runs never read files."""

    id: str
    channel: str
    template: str | None = None
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    kind: Literal["send"] = "send"
    fallback: tuple[str, ...] = ()
    topic: str | None = None
    """The topic recipients can opt out of (the step's, else the journey's)."""
    transactional: bool = False
    """Goes through topic opt-outs and the marketing unsubscribe, never a suppression."""

    @property
    def channels(self) -> tuple[str, ...]:
        """The channels to try, in order."""
        return (self.channel, *self.fallback)


def _compile(spec: SendSpec, ctx: CompileContext, where: Located) -> SendStep:
    if spec.template is not None:
        for channel in (spec.channel, *spec.fallback):
            ctx.use_template(spec.template, channel, (*where, "template"))
    if spec.url is not None:
        ctx.check_url(spec.url, (*where, "url"))
    return SendStep(
        id=spec.send,
        channel=spec.channel,
        template=spec.template,
        url=spec.url,
        headers=dict(spec.headers or {}),
        fallback=tuple(spec.fallback),
        topic=spec.topic or ctx.topic,
        transactional=spec.transactional,
    )


async def _run(step: SendStep, runner: Runner) -> None:
    await runner.send(step)


def _label(step: SendStep) -> str:
    via = " → ".join(step.channels)
    return f"send {step.template or 'payload'} via {via}"


KIND: StepKind[SendSpec, SendStep] = StepKind(
    name="send", spec=SendSpec, step=SendStep, compile=_compile, run=_run, label=_label
)
