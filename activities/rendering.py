"""Turning a template variant and a recipient into the content of a message."""

from __future__ import annotations

from typing import Any

from definitions.contract import SendInput
from definitions.templates import CompiledTemplate, render_string, render_value

__all__ = ["default_webhook_body", "render_variant", "variables"]


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
    template: CompiledTemplate, channel: str, names: dict[str, Any]
) -> dict[str, Any]:
    """Every field of the template's variant for a channel, rendered."""
    variant = template.variants.get(channel)
    if variant is None:  # only webhooks may lack a variant: they send the default body
        return {"body": default_webhook_body(names)}
    if channel == "webhook":
        return {
            "body": render_value(
                template.engine, variant.get("body"), names, strict=template.strict
            )
        }
    return {
        key: render_value(template.engine, value, names, strict=template.strict)
        if key == "data"
        else render_string(
            template.engine, value, names, html=key == "html", strict=template.strict
        )
        for key, value in variant.items()
    }


def default_webhook_body(names: dict[str, Any]) -> dict[str, Any]:
    """The body of a webhook step that names no template."""
    return {
        "journey": names["journey"],
        "customer": names["customer"],
        "trigger": names["trigger"],
        "event": names["event"],
    }
