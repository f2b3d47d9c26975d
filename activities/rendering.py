"""Turning a template variant and a recipient into the content of a message."""

from __future__ import annotations

from typing import Any

from definitions.channels import CHANNELS
from definitions.contract import SendInput
from definitions.templates import CompiledTemplate, RenderError, render_string, render_value

__all__ = ["render_variant", "variables"]


def variables(
    request: SendInput,
    profile: dict[str, Any],
    message_id: str,
    unsubscribe_url: str | None = None,
) -> dict[str, Any]:
    """The names a template can use: customer, event, trigger and journey."""
    return {
        "customer": profile,
        "event": dict(request.event),
        "trigger": dict(request.data),
        "journey": {
            "name": request.run.journey,
            "step": request.step.id,
            "run_id": f"{request.run.workflow_id}/{request.run.run_id}",
            "trigger_id": request.run.trigger_id,
            "message_id": message_id,
            "unsubscribe_url": unsubscribe_url or "",
        },
    }


def render_variant(
    template: CompiledTemplate | None, channel: str, names: dict[str, Any]
) -> dict[str, Any]:
    """Every field of the template's variant for a channel, rendered.

    A field named ``html`` is HTML-escaped; a JSON value (a webhook's body, push data) is
    rendered string by string, keeping its shape. Without a template, or without a variant
    for the channel, the channel's default content (only webhooks have one).
    """
    variant = template.variants.get(channel) if template is not None else None
    if template is None or variant is None:
        default = CHANNELS[channel].default_content
        if default is None:
            raise RenderError(f"no {channel} variant to send")
        return default(names)
    return {
        key: render_string(template.engine, value, names, html=True, strict=template.strict)
        if key == "html"
        else render_value(template.engine, value, names, strict=template.strict)
        for key, value in variant.items()
    }
