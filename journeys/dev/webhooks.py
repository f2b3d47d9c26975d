"""The webhook channel of ``journeys dev`` when webhooks are caught (``[dev] webhooks``)."""

from __future__ import annotations

import httpx

from activities.channels.base import MESSAGE_ID_HEADER, Delivery, Outgoing
from activities.channels.http import raise_for_delivery
from activities.channels.webhook import WebhookChannel, WebhookSettings
from definitions.errors import RetryableDeliveryError
from journeys.dev.catchers import ORIGINAL_URL_HEADER

__all__ = ["CaughtWebhookChannel"]


class CaughtWebhookChannel(WebhookChannel):
    """Builds each webhook as in production, then posts it to the catcher instead of its URL.

    The URL's form is checked as in production (a refused form is skipped the same way); the
    catcher is this machine's own server, given by ``journeys dev``, so the connection to it
    does not go through the guard that keeps user-given URLs off private networks.

    Args:
        settings: the ``[webhook]`` section (timeout, signing secret).
        catcher_url: the webhook catcher's base URL.

    """

    def __init__(self, settings: WebhookSettings, *, catcher_url: str) -> None:
        super().__init__(settings)
        self.catcher_url = catcher_url
        self._catcher = httpx.AsyncClient(timeout=settings.timeout, trust_env=False)

    async def deliver(self, message: Outgoing) -> Delivery:
        """POST to the catcher, with the URL it was for and the message's id."""
        url, body, headers = self.request(message)
        headers = {**headers, ORIGINAL_URL_HEADER: url, MESSAGE_ID_HEADER: message.message_id}
        await message.handover()
        try:
            response = await self._catcher.post(self.catcher_url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise RetryableDeliveryError(f"the webhook catcher: {exc!r}") from exc
        raise_for_delivery(response, "the webhook catcher")
        return Delivery(provider_id=headers["webhook-id"], detail={"caught": True})

    async def close(self) -> None:
        """Close both connection pools."""
        await self._catcher.aclose()
        await super().close()
