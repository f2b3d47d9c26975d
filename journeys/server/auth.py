"""Credentials and rate limits of the HTTP API."""

from __future__ import annotations

import base64
import hmac
import math
import time
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import HTTPException, Request, Security
from fastapi.security import HTTPBearer
from fastapi.security.http import HTTPAuthorizationCredentials, HTTPBase

from journeys.config import ServerSettings

__all__ = ["Credentials", "RateLimiter", "app_auth", "native_auth", "track_auth"]

# Declared for the OpenAPI document (and so for Schemathesis); the checks are Credentials'.
_TRACK = HTTPBase(
    scheme="basic",
    scheme_name="trackBasic",
    description="Customer.io Track API: HTTP Basic site_id:api_key.",
    auto_error=False,
)
_NATIVE = HTTPBearer(
    scheme_name="nativeBearer",
    description="A native API token (JOURNEYS_SERVER_TOKENS).",
    auto_error=False,
)
_APP = HTTPBearer(
    scheme_name="appBearer",
    description="The App API key (JOURNEYS_SERVER_APP_API_KEY); native tokens work too.",
    auto_error=False,
)


class RateLimiter:
    """A token bucket per credential: ``rate`` a second, bursts of twice that."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate * 2)
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> float:
        """Use one request; returns 0, or the seconds to wait when there is none left."""
        now = time.monotonic()
        tokens, stamp = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - stamp) * self.rate)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / self.rate


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


@dataclass
class Credentials:
    """Checks the three kinds of credential and applies the rate limit."""

    settings: ServerSettings
    limiter: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(self.settings.rate_limit)

    def _limit(self, who: str) -> None:
        wait = self.limiter.take(who)
        if wait > 0:
            raise HTTPException(
                429, "rate limit exceeded", headers={"Retry-After": str(max(1, math.ceil(wait)))}
            )

    def _deny(self, status: int, message: str, scheme: str) -> HTTPException:
        return HTTPException(status, message, headers={"WWW-Authenticate": scheme})

    def track(self, request: Request) -> str:
        """HTTP Basic ``site_id:api_key`` (Customer.io's Track API)."""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            raise self._deny(403, "this endpoint takes Basic site_id:api_key credentials", "Basic")
        if not header.lower().startswith("basic "):
            raise self._deny(
                401, "missing credentials: expected HTTP Basic site_id:api_key", "Basic"
            )
        try:
            site_id, _, api_key = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise self._deny(401, "malformed Basic credentials", "Basic") from None
        s = self.settings
        if not (
            s.site_id and s.api_key and _equal(site_id, s.site_id) and _equal(api_key, s.api_key)
        ):
            raise self._deny(401, "unauthorized: unknown site id or API key", "Basic")
        self._limit(f"track:{site_id}")
        return site_id

    def _bearer(self, request: Request) -> str:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            raise self._deny(403, "this endpoint takes a Bearer token", "Bearer")
        if not header.lower().startswith("bearer ") or not header[7:].strip():
            raise self._deny(401, "missing credentials: expected a Bearer token", "Bearer")
        return header[7:].strip()

    def native(self, request: Request) -> str:
        """A Bearer token of the native API."""
        token = self._bearer(request)
        if not any(_equal(token, known) for known in self.settings.tokens):
            if self.settings.app_api_key and _equal(token, self.settings.app_api_key):
                raise self._deny(403, "the App API key cannot use the native API", "Bearer")
            raise self._deny(401, "unauthorized: unknown token", "Bearer")
        self._limit(f"native:{token[-6:]}")
        return token

    def app(self, request: Request) -> str:
        """The App API key (broadcast triggers); native tokens work too."""
        token = self._bearer(request)
        known = [k for k in (self.settings.app_api_key, *self.settings.tokens) if k]
        if not any(_equal(token, k) for k in known):
            raise self._deny(401, "unauthorized: unknown App API key", "Bearer")
        self._limit(f"app:{token[-6:]}")
        return token


def _credentials(request: Request) -> Credentials:
    found: Credentials = request.app.state.credentials
    return found


async def track_auth(
    request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Security(_TRACK)]
) -> str:
    """HTTP Basic site id and API key; returns the site id."""
    return _credentials(request).track(request)


async def native_auth(
    request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Security(_NATIVE)]
) -> str:
    """A Bearer token of the native API."""
    return _credentials(request).native(request)


async def app_auth(
    request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Security(_APP)]
) -> str:
    """The App API key (broadcast triggers)."""
    return _credentials(request).app(request)
