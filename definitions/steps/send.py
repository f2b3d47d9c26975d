"""``send: welcome`` — deliver a message to the recipient over a channel."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from pydantic import field_validator, model_validator

from definitions.channels import check_channel
from definitions.model import SchemaModel, invalid
from definitions.steps.base import Runner, StepKind, check_step_id

if TYPE_CHECKING:
    from definitions.compiler import CompileContext
    from definitions.source import Located


class SendSpec(SchemaModel):
    """A send step as written in YAML."""

    send: str
    channel: str
    template: str | None = None
    url: str | None = None
    headers: dict[str, str] | None = None

    _id = field_validator("send")(check_step_id)
    _channel = field_validator("channel")(check_channel)

    @model_validator(mode="after")
    def _channel_needs(self) -> SendSpec:
        if self.channel == "webhook":
            if not self.url:
                raise invalid("a webhook send needs a url: expected key 'url', found none")
        elif self.template is None:
            raise invalid(
                f"an {self.channel} send needs a template: expected key 'template', found none"
            )
        if self.channel != "webhook":
            for key in ("url", "headers"):
                if getattr(self, key) is not None:
                    raise invalid(
                        f"expected no {key!r} on a {self.channel} send ({key!r} is for webhooks)"
                    )
        return self


@dataclass(frozen=True)
class SendStep:
    """A compiled send: the template is carried in the plan, so runs never read files."""

    id: str
    channel: str
    template: str | None = None
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    kind: Literal["send"] = "send"


def _compile(spec: SendSpec, ctx: CompileContext, where: Located) -> SendStep:
    if spec.template is not None:
        ctx.use_template(spec.template, spec.channel, (*where, "template"))
    if spec.url is not None:
        ctx.check_url(spec.url, (*where, "url"))
    return SendStep(
        id=spec.send,
        channel=spec.channel,
        template=spec.template,
        url=spec.url,
        headers=dict(spec.headers or {}),
    )


async def _run(step: SendStep, runner: Runner) -> None:
    await runner.send(step)


KIND = StepKind(
    name="send",
    spec=SendSpec,
    step=SendStep,
    compile=_compile,
    run=_run,
    label=lambda s: f"send {s.template or 'payload'} via {s.channel}",
)
