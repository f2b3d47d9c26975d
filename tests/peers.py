"""Local HTTP peers that speak the providers' documented request shapes and check them.

The shapes themselves (paths, credentials, bodies, error answers) live in
:mod:`journeys.dev.shapes`, shared with ``journeys dev``'s catchers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from journeys.dev.http import LoopbackServer
from journeys.dev.shapes import FcmShape, HttpRequest, Reply, TwilioShape, new_service_account

Request = HttpRequest

__all__ = ["FcmPeer", "HttpPeer", "Reply", "Request", "TwilioPeer"]


class HttpPeer(LoopbackServer):
    """An HTTP server on loopback whose answers come from ``handle``; keeps every request."""

    def __init__(self, handle: Callable[[Request], Reply]) -> None:
        self.requests: list[Request] = []

        def keep(request: Request) -> Reply:
            self.requests.append(request)
            return handle(request)

        super().__init__(keep)
        self.start()


@dataclass
class TwilioPeer:
    """Twilio's Messages API: basic auth with the account SID and token, form fields."""

    account_sid: str = "AC" + "0" * 32
    auth_token: str = "test-token"
    invalid: dict[str, int] = field(default_factory=dict)
    """To-number → Twilio error code to answer with (400)."""
    sent: list[dict[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    status: int | None = None
    """Force this status (e.g. 503) for every request."""
    fail_next: int = 0
    """Answer the next this many requests with 503."""
    requests: int = 0

    def __post_init__(self) -> None:
        self.shape = TwilioShape(self.account_sid, self.auth_token)
        self.http = HttpPeer(self.handle)

    def handle(self, request: Request) -> Reply:
        refused = self.shape.refusal(request)
        if refused:
            self.errors.append(refused[0])
            return refused[1]
        form = request.form()
        self.requests += 1
        if self.fail_next > 0:
            self.fail_next -= 1
            return self.shape.error(503, 20503, "try again")
        if self.status:
            return self.shape.error(self.status, 20500, "unavailable")
        self.errors.extend(self.shape.problems(request))
        if form.get("To") in self.invalid:
            code = self.invalid[form["To"]]
            return self.shape.error(400, code, f"error {code}")
        self.sent.append(form)
        return self.shape.created(form)


@dataclass
class FcmPeer:
    """FCM HTTP v1 with its OAuth2 token endpoint; checks the signed JWT assertion."""

    project_id: str = "journeys-test"
    unregistered: set[str] = field(default_factory=set)
    sent: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    tokens_issued: int = 0

    def __post_init__(self) -> None:
        self.http = HttpPeer(self.handle)
        key, self._account = new_service_account(self.project_id, f"{self.http.url}/token")
        self.key: rsa.RSAPrivateKey = key
        self.shape = FcmShape(self.project_id, key, f"{self.http.url}/token", "ya29.test")
        self.access_token = self.shape.access_token

    def service_account(self) -> dict[str, str]:
        return dict(self._account)

    def handle(self, request: Request) -> Reply:
        if request.path == self.shape.token_path:
            problems, reply = self.shape.token(request)
            self.errors.extend(problems)
            if reply[0] == 200:
                self.tokens_issued += 1
            return reply
        refused = self.shape.refusal(request)
        if refused:
            self.errors.append(refused[0])
            return refused[1]
        message = request.json()["message"]
        if message["token"] in self.unregistered:
            return self.shape.error(404, "NOT_FOUND", "UNREGISTERED")
        self.sent.append(message)
        return self.shape.sent()
