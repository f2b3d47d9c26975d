"""Local HTTP peers that speak the providers' documented request shapes and check them."""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from journeys.devserver import free_port


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}

    def json(self) -> Any:
        return json.loads(self.body)


Reply = tuple[int, dict[str, Any]]


class HttpPeer:
    """An HTTP server on loopback whose answers come from ``handle``."""

    def __init__(self, handle: Callable[[Request], Reply]) -> None:
        self.port = free_port()
        self.requests: list[Request] = []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                request = Request(
                    "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, raw
                )
                peer.requests.append(request)
                status, body = handle(request)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


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
        self.http = HttpPeer(self.handle)

    def handle(self, request: Request) -> Reply:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            self.errors.append("bad auth")
            return 401, {"code": 20003, "message": "Authenticate", "status": 401}
        if request.path != f"/2010-04-01/Accounts/{self.account_sid}/Messages.json":
            self.errors.append(f"bad path {request.path}")
            return 404, {"code": 20404, "message": "not found", "status": 404}
        if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
            self.errors.append("not form-encoded")
        form = request.form()
        self.requests += 1
        if self.fail_next > 0:
            self.fail_next -= 1
            return 503, {"code": 20503, "message": "try again", "status": 503}
        if self.status:
            return self.status, {"code": 20500, "message": "unavailable", "status": self.status}
        if not form.get("To", "").startswith("+") or not form.get("Body"):
            self.errors.append(f"bad form {form}")
        if form.get("To") in self.invalid:
            code = self.invalid[form["To"]]
            return 400, {"code": code, "message": f"error {code}", "status": 400}
        self.sent.append(form)
        return 201, {"sid": "SM" + secrets.token_hex(16), "status": "queued", "to": form["To"]}


@dataclass
class FcmPeer:
    """FCM HTTP v1 with its OAuth2 token endpoint; checks the signed JWT assertion."""

    project_id: str = "journeys-test"
    unregistered: set[str] = field(default_factory=set)
    sent: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    tokens_issued: int = 0

    def __post_init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.access_token = "ya29." + secrets.token_hex(8)
        self.http = HttpPeer(self.handle)

    def service_account(self) -> dict[str, str]:
        pem = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": "k1",
            "private_key": pem,
            "client_email": f"push@{self.project_id}.iam.gserviceaccount.com",
            "token_uri": f"{self.http.url}/token",
        }

    def handle(self, request: Request) -> Reply:
        if request.path == "/token":
            return self._token(request)
        if request.path != f"/v1/projects/{self.project_id}/messages:send":
            self.errors.append(f"bad path {request.path}")
            return 404, {"error": {"code": 404, "status": "NOT_FOUND"}}
        if request.headers.get("authorization") != f"Bearer {self.access_token}":
            self.errors.append("bad bearer token")
            return 401, {"error": {"code": 401, "status": "UNAUTHENTICATED"}}
        message = request.json()["message"]
        if message["token"] in self.unregistered:
            return 404, {
                "error": {
                    "code": 404,
                    "status": "NOT_FOUND",
                    "details": [
                        {
                            "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                            "errorCode": "UNREGISTERED",
                        }
                    ],
                }
            }
        self.sent.append(message)
        return 200, {"name": f"projects/{self.project_id}/messages/{secrets.token_hex(6)}"}

    def _token(self, request: Request) -> Reply:
        form = request.form()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            self.errors.append("bad grant type")
        header, claims, signature = form["assertion"].split(".")
        pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
        try:
            self.key.public_key().verify(
                base64.urlsafe_b64decode(pad(signature)),
                f"{header}.{claims}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except Exception:
            self.errors.append("bad JWT signature")
            return 400, {"error": "invalid_grant"}
        body = json.loads(base64.urlsafe_b64decode(pad(claims)))
        if body.get("scope") != "https://www.googleapis.com/auth/firebase.messaging":
            self.errors.append(f"bad scope {body.get('scope')}")
        if body.get("aud") != f"{self.http.url}/token":
            self.errors.append("bad audience")
        self.tokens_issued += 1
        return 200, {"access_token": self.access_token, "expires_in": 3600, "token_type": "Bearer"}
