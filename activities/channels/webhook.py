"""Webhooks: a JSON POST signed per the Standard Webhooks specification.

Headers: ``webhook-id`` (stable per message: receivers can use it to drop duplicates),
``webhook-timestamp`` (Unix seconds) and ``webhook-signature: v1,<base64 HMAC-SHA256 of
"id.timestamp.body">`` keyed with the ``whsec_…`` secret.

Every request goes through :class:`~activities.url_guard.UrlGuard`: targets that resolve to
private, loopback, link-local or otherwise non-public addresses are refused unless their
network is allow-listed in ``[webhook] allow_private``, and the connection goes to the address
that was checked. Redirects are not followed: a 3xx answer is a permanent failure that names
the ``Location`` (retrying the same URL gets the same redirect; the fix is the step's URL).

The channel: ``[webhook]`` settings, the template's ``webhook`` variant (a JSON body whose
strings are templates; without one, :func:`default_body`), addressed by the step's ``url``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import Field

from activities.url_guard import UrlGuard
from definitions.channels import ChannelSettings, ChannelSpec
from definitions.errors import RetryableDeliveryError
from definitions.model import SchemaModel

from .base import Delivery, Outgoing, Render
from .http import raise_for_delivery

if TYPE_CHECKING:
    from definitions.steps.send import SendStep

__all__ = [
    "CHANNEL",
    "WebhookChannel",
    "WebhookSettings",
    "WebhookVariant",
    "default_body",
    "sign",
    "webhook_id",
]


class WebhookVariant(SchemaModel):
    """A webhook's JSON body; every string in it is a template."""

    body: Any = None


class WebhookSettings(ChannelSettings):
    """How webhooks are posted and signed (``[webhook]``)."""

    timeout: float = 10.0
    secret: str | None = Field(default=None, repr=False)
    """``whsec_…`` signing secret (only from JOURNEYS_WEBHOOK_SECRET)."""
    allow_private: list[str] = Field(default_factory=list)
    """Networks (CIDR) a webhook may reach though private, loopback or link-local."""


def default_body(names: dict[str, Any]) -> dict[str, Any]:
    """A webhook's content without a template (or its variant): the message variables."""
    return {
        "body": {
            "journey": names["journey"],
            "customer": names["customer"],
            "trigger": names["trigger"],
            "event": names["event"],
        }
    }


def webhook_id(message_id: str) -> str:
    """The ``webhook-id`` of a message: the same on every retry."""
    return "msg_" + hashlib.sha256(message_id.encode()).hexdigest()[:32]


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for a body."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class WebhookChannel:
    """POSTs the rendered JSON body to the step's URL.

    Args:
        settings: the ``[webhook]`` section.
        guard: the URL guard to send through (by default one built from
            ``settings.allow_private``).

    """

    name = "webhook"

    def __init__(self, settings: WebhookSettings, *, guard: UrlGuard | None = None) -> None:
        self.settings = settings
        self.guard = guard or UrlGuard(settings.allow_private, setting="[webhook] allow_private")
        self._client = self.guard.client(timeout=settings.timeout)

    def addresses(self, profile: dict[str, Any], step: SendStep, render: Render) -> list[str]:
        """The step's URL, rendered with the message variables, if its form may be used."""
        if not step.url:
            return []
        url = render(step.url)
        self.guard.check_url(url)
        return [url]

    async def deliver(self, message: Outgoing) -> Delivery:
        """POST; 2xx is delivered, 408/425/429/5xx retryable, other statuses permanent.

        Raises:
            InvalidAddressError: the URL or an address its host resolves to is refused.
            RetryableDeliveryError: no connection, a timeout, 408/425/429/5xx.
            PermanentDeliveryError: another status, redirects included.

        """
        url, body, headers = self.request(message)
        await message.handover()
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise RetryableDeliveryError(f"POST {url}: {exc!r}") from exc
        raise_for_delivery(response, f"POST {url}")
        return Delivery(provider_id=headers["webhook-id"], detail={"status": response.status_code})

    def request(self, message: Outgoing) -> tuple[str, bytes, dict[str, str]]:
        """The URL (its form checked), the JSON body and the signed headers of a message.

        Raises:
            InvalidAddressError: the URL's form is refused.

        """
        url = message.addresses[0]
        self.guard.check_url(url)
        body = json.dumps(message.content.get("body"), separators=(",", ":")).encode()
        identifier = webhook_id(message.message_id)
        timestamp = int(time.time())
        headers = {
            **message.headers,
            "content-type": "application/json",
            "webhook-id": identifier,
            "webhook-timestamp": str(timestamp),
        }
        if self.settings.secret:
            headers["webhook-signature"] = sign(self.settings.secret, identifier, timestamp, body)
        return url, body, headers

    async def close(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.aclose()


CHANNEL = ChannelSpec(
    name="webhook",
    variant=WebhookVariant,
    settings=WebhookSettings,
    open=WebhookChannel,
    secrets=("secret",),
    url=True,
    default_content=default_body,
)
