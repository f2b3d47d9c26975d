"""Push notifications through Firebase Cloud Messaging's HTTP v1 API.

The access token comes from the service-account key: a JWT signed with its private key
(RS256) is exchanged at the key's ``token_uri`` for an OAuth2 bearer token, kept until
shortly before it expires. One message is sent per device token; tokens FCM reports as
``UNREGISTERED`` are returned as stale, and the send activity deletes them from the
person's devices (the store's devices table, where every device lives).

The channel: ``[push]`` settings, the template's ``push`` variant (a body, an optional
title and string data), the profile's ``devices``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic import Field

from definitions.channels import ChannelSettings, ChannelSpec
from definitions.errors import PermanentDeliveryError, RetryableDeliveryError
from definitions.model import SchemaModel

from .base import MESSAGE_ID_HEADER, Delivery, Outgoing, Render
from .http import raise_for_delivery, retry_after

if TYPE_CHECKING:
    from definitions.steps.send import SendStep

__all__ = ["CHANNEL", "SCOPE", "PushChannel", "PushSettings", "PushVariant", "device_tokens"]

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


class PushVariant(SchemaModel):
    """A push notification: a title, a body and optional string data."""

    body: str
    title: str | None = None
    data: dict[str, str] | None = None


class PushSettings(ChannelSettings):
    """Firebase Cloud Messaging, HTTP v1 (``[push]``)."""

    base_url: str = "https://fcm.googleapis.com"
    service_account_file: str | None = None
    """Path of the service-account key JSON (its token_uri is where tokens come from)."""
    service_account: str | None = Field(default=None, repr=False)
    """The key JSON itself (only from JOURNEYS_PUSH_SERVICE_ACCOUNT)."""
    timeout: float = 10.0


def device_tokens(profile: dict[str, Any]) -> list[str]:
    """The push tokens of a profile's ``devices`` (``[{token, platform}]`` or plain strings).

    The store's profiles list the devices of its devices table there.
    """
    tokens = []
    for device in profile.get("devices") or []:
        token = device.get("token") if isinstance(device, dict) else device
        if isinstance(token, str) and token:
            tokens.append(token)
    return tokens


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class _ServiceAccount:
    def __init__(self, info: dict[str, Any]) -> None:
        try:
            self.project_id = str(info["project_id"])
            self.email = str(info["client_email"])
            self.token_uri = str(info["token_uri"])
            self.key_id = str(info.get("private_key_id", ""))
            key = serialization.load_pem_private_key(info["private_key"].encode(), None)
        except (KeyError, ValueError, TypeError) as exc:
            raise PermanentDeliveryError(f"invalid FCM service-account key: {exc}") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise PermanentDeliveryError("invalid FCM service-account key: not an RSA key")
        self.key = key

    def assertion(self, now: int) -> str:
        header = {"alg": "RS256", "typ": "JWT", "kid": self.key_id}
        claims = {
            "iss": self.email,
            "scope": SCOPE,
            "aud": self.token_uri,
            "iat": now,
            "exp": now + 3600,
        }
        signing_input = ".".join(
            _b64(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
        )
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64(signature)}"


class PushChannel:
    """Sends the template's ``push`` variant to every device token of the profile."""

    name = "push"

    def __init__(self, settings: PushSettings) -> None:
        self.settings = settings
        self._client = httpx.AsyncClient(base_url=settings.base_url, timeout=settings.timeout)
        self._account: _ServiceAccount | None = None
        self._token: tuple[str, float] | None = None
        self._token_lock: asyncio.Lock | None = None

    def addresses(self, profile: dict[str, Any], step: SendStep, render: Render) -> list[str]:
        """The profile's device tokens."""
        return device_tokens(profile)

    def _service_account(self) -> _ServiceAccount:
        if self._account is None:
            s = self.settings
            if s.service_account:
                text = s.service_account
            elif s.service_account_file:
                text = Path(s.service_account_file).read_text(encoding="utf-8")
            else:
                raise PermanentDeliveryError(
                    "push is not configured: set [push] service_account_file or "
                    "JOURNEYS_PUSH_SERVICE_ACCOUNT"
                )
            self._account = _ServiceAccount(json.loads(text))
        return self._account

    async def _access_token(self) -> str:
        if self._token_lock is None:
            self._token_lock = asyncio.Lock()
        async with self._token_lock:
            if self._token and self._token[1] > time.monotonic() + 60:
                return self._token[0]
            account = self._service_account()
            try:
                response = await self._client.post(
                    account.token_uri,
                    data={
                        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                        "assertion": account.assertion(int(time.time())),
                    },
                )
            except httpx.HTTPError as exc:
                raise RetryableDeliveryError(f"OAuth token endpoint: {exc!r}") from exc
            raise_for_delivery(response, "the OAuth token endpoint", response.text[:200])
            body = response.json()
            self._token = (
                body["access_token"],
                time.monotonic() + float(body.get("expires_in", 3600)),
            )
            return self._token[0]

    async def deliver(self, message: Outgoing) -> Delivery:
        """One FCM message per device token; delivered when at least one token took it."""
        account = self._service_account()
        notification = {k: message.content[k] for k in ("title", "body") if k in message.content}
        names: list[str] = []
        stale: list[str] = []
        transient: list[RetryableDeliveryError] = []
        permanent: list[str] = []
        await self._access_token()  # before the handover: it may take a while
        await message.handover()
        for token in message.addresses:
            payload: dict[str, Any] = {"token": token, "notification": notification}
            if message.content.get("data"):
                payload["data"] = dict(message.content["data"])
            try:
                names.append(await self._send_one(account, payload, message.message_id))
            except _Unregistered:
                stale.append(token)
            except RetryableDeliveryError as exc:
                transient.append(exc)
            except PermanentDeliveryError as exc:
                permanent.append(str(exc))
        detail = {"devices": len(message.addresses), "delivered": len(names)}
        if names:
            if stale:
                detail["unregistered"] = len(stale)
            return Delivery(provider_id=names[0], detail=detail, stale=stale)
        if transient:
            first = transient[0]
            raise RetryableDeliveryError(str(first), retry_after=first.retry_after, stale=stale)
        if stale and not permanent:
            raise PermanentDeliveryError("every device token is unregistered", stale=stale)
        raise PermanentDeliveryError("; ".join(permanent), stale=stale)

    async def _send_one(
        self, account: _ServiceAccount, payload: dict[str, Any], message_id: str
    ) -> str:
        token = await self._access_token()
        try:
            response = await self._client.post(
                f"/v1/projects/{account.project_id}/messages:send",
                json={"message": payload},
                headers={"authorization": f"Bearer {token}", MESSAGE_ID_HEADER: message_id},
            )
        except httpx.HTTPError as exc:
            raise RetryableDeliveryError(f"FCM: {exc!r}") from exc
        if response.status_code == 401:
            self._token = None  # expired or revoked: fetch a new one on the retry
            raise RetryableDeliveryError("FCM answered 401", retry_after=retry_after(response))
        code = _fcm_error_code(response)
        if code == "UNREGISTERED":
            raise _Unregistered()
        raise_for_delivery(response, "FCM", code or "")
        return str(response.json().get("name", ""))

    async def close(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.aclose()


CHANNEL = ChannelSpec(
    name="push",
    variant=PushVariant,
    settings=PushSettings,
    open=PushChannel,
    secrets=("service_account",),
)


class _Unregistered(Exception):
    pass


def _fcm_error_code(response: httpx.Response) -> str | None:
    if response.status_code < 400:
        return None
    try:
        error = response.json().get("error", {})
    except ValueError:
        return None
    for detail in error.get("details") or []:
        if detail.get("errorCode"):
            return str(detail["errorCode"])
    return str(error.get("status")) if error.get("status") else None
