"""Webhooks: a JSON POST signed per the Standard Webhooks specification.

Headers: ``webhook-id`` (stable per message: receivers can use it to drop duplicates),
``webhook-timestamp`` (Unix seconds) and ``webhook-signature: v1,<base64 HMAC-SHA256 of
"id.timestamp.body">`` keyed with the ``whsec_…`` secret. Targets that resolve to private,
loopback, link-local or otherwise non-public addresses are refused unless their network is
allow-listed in ``[webhook] allow_private``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import json
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from definitions.errors import (
    InvalidAddressError,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from journeys.config import WebhookSettings

from .base import Delivery, Outgoing, Render
from .http import raise_for_delivery

__all__ = ["WebhookChannel", "sign", "webhook_id"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


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
    """POSTs the rendered JSON body to the step's URL."""

    name = "webhook"

    def __init__(self, settings: WebhookSettings) -> None:
        self.settings = settings
        self._client = httpx.AsyncClient(timeout=settings.timeout)
        self._allowed = [ipaddress.ip_network(n, strict=False) for n in settings.allow_private]

    def addresses(self, profile: dict[str, Any], step: Any, render: Render) -> list[str]:
        """The step's URL, rendered with the message variables."""
        if not step.url:
            return []
        url = render(step.url)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidAddressError(f"invalid webhook URL {url!r}")
        return [url]

    async def _check_target(self, url: str) -> None:
        host = urlsplit(url).hostname or ""
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, None, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise RetryableDeliveryError(f"cannot resolve {host}: {exc}") from exc
        for info in infos:
            address = ipaddress.ip_address(info[4][0])
            if address.is_global or any(address in net for net in self._allowed):
                continue
            raise PermanentDeliveryError(
                f"refused to post to {host} ({address}): not a public address; "
                "allow its network in [webhook] allow_private"
            )

    async def deliver(self, message: Outgoing) -> Delivery:
        """POST; 2xx is delivered, 408/425/429/5xx retryable, other statuses permanent."""
        url = message.addresses[0]
        await self._check_target(url)
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
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise RetryableDeliveryError(f"POST {url}: {exc!r}") from exc
        raise_for_delivery(response, f"POST {url}")
        return Delivery(provider_id=identifier, detail={"status": response.status_code})

    async def close(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.aclose()
