"""Webhooks: a JSON POST over HTTP with httpx."""

from __future__ import annotations

from typing import Any

import httpx

from definitions.errors import PermanentDeliveryError, RetryableDeliveryError
from journeys.config import WebhookSettings

from .base import Delivery, Outgoing

__all__ = ["WebhookChannel"]

_RETRYABLE = {408, 425, 429}


class WebhookChannel:
    """POSTs the rendered JSON body to the step's URL."""

    name = "webhook"

    def __init__(self, settings: WebhookSettings) -> None:
        self.settings = settings
        self._client = httpx.AsyncClient(timeout=settings.timeout)

    def address(self, profile: dict[str, Any], step: Any, render: Any) -> str | None:
        """The step's URL, rendered with the message variables."""
        return str(render(step.url)) if step.url else None

    async def deliver(self, message: Outgoing) -> Delivery:
        """POST; 2xx is delivered, 408/425/429/5xx retryable, other statuses permanent."""
        headers = {"webhook-id": message.message_id, **message.headers}
        try:
            response = await self._client.post(
                message.address, json=message.content.get("body"), headers=headers
            )
        except httpx.HTTPError as exc:
            raise RetryableDeliveryError(f"POST {message.address}: {exc!r}") from exc
        status = response.status_code
        if 200 <= status < 300:
            return Delivery(detail={"status": status})
        error = f"POST {message.address} answered {status}"
        if status in _RETRYABLE or status >= 500:
            raise RetryableDeliveryError(error)
        raise PermanentDeliveryError(error)

    async def close(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.aclose()
