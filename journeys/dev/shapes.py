"""What Twilio's Messages API and FCM HTTP v1 expect and answer, for local stand-ins.

The dev catchers (:mod:`journeys.dev.catchers`) and the test suite's peers both speak these
shapes, so what ``activities/channels/sms.py`` and ``push.py`` send is checked the same way
everywhere: a request out of shape is answered as the provider would answer it.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from definitions.values import JSONValue

__all__ = [
    "FCM_SCOPE",
    "FcmShape",
    "HttpRequest",
    "Reply",
    "TwilioShape",
    "new_service_account",
]

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
_JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"

Reply = tuple[int, dict[str, JSONValue]]
"""An HTTP status and the JSON body answered with it."""


@dataclass(frozen=True)
class HttpRequest:
    """One request as a stand-in received it."""

    method: str
    path: str
    headers: dict[str, str]
    """Header names in lower case."""
    body: bytes

    def form(self) -> dict[str, str]:
        """The form-encoded body (the first value of each field)."""
        return {k: v[0] for k, v in parse_qs(self.body.decode(errors="replace")).items()}

    def json(self) -> Any:  # noqa: ANN401  (read by a provider's documented shape; a wrong one raises)
        """The JSON body."""
        return json.loads(self.body)


@dataclass(frozen=True)
class TwilioShape:
    """Twilio's Create Message request: basic auth with the account SID, form fields."""

    account_sid: str = "AC" + "0" * 32
    auth_token: str = "dev-token"

    @property
    def path(self) -> str:
        """Where messages are created."""
        return f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    def refusal(self, request: HttpRequest) -> tuple[str, Reply] | None:
        """What is wrong with a request's credentials or path, and Twilio's answer to it."""
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return "bad auth", self.error(401, 20003, "Authenticate")
        if request.path != self.path:
            return f"bad path {request.path}", self.error(404, 20404, "not found")
        return None

    def problems(self, request: HttpRequest) -> list[str]:
        """What is wrong with the message's form (empty when it is in shape)."""
        found = []
        if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
            found.append("not form-encoded")
        form = request.form()
        if not form.get("To", "").startswith("+") or not form.get("Body"):
            found.append(f"bad form {form}")
        if not (form.get("From") or form.get("MessagingServiceSid")):
            found.append("no From or MessagingServiceSid")
        return found

    @staticmethod
    def error(status: int, code: int, message: str) -> Reply:
        """Twilio's error body."""
        return status, {"code": code, "message": message, "status": status}

    @staticmethod
    def created(form: dict[str, str]) -> Reply:
        """Twilio's answer to a message it accepted."""
        return 201, {"sid": "SM" + secrets.token_hex(16), "status": "queued", "to": form["To"]}


def new_service_account(
    project_id: str, token_uri: str
) -> tuple[rsa.RSAPrivateKey, dict[str, str]]:
    """A fresh RSA key and a service-account key JSON (as a dict) that names it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": f"push@{project_id}.iam.gserviceaccount.com",
        "token_uri": token_uri,
    }
    return key, info


def _unpad(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class FcmShape:
    """FCM HTTP v1 and its OAuth2 token endpoint (a JWT signed with the account's key)."""

    project_id: str
    key: rsa.RSAPrivateKey
    """The service account's key: the token endpoint verifies assertions with its public half."""
    token_url: str
    """Where tokens are asked for (the key's ``token_uri``, the JWT's audience)."""
    access_token: str = "ya29.dev"

    token_path = "/token"

    @property
    def send_path(self) -> str:
        """Where messages are sent."""
        return f"/v1/projects/{self.project_id}/messages:send"

    def token(self, request: HttpRequest) -> tuple[list[str], Reply]:
        """Check a token request's JWT assertion; what is wrong with it and the answer."""
        form = request.form()
        found = []
        if form.get("grant_type") != _JWT_BEARER:
            found.append("bad grant type")
        try:
            header, claims, signature = form.get("assertion", "").split(".")
            self.key.public_key().verify(
                _unpad(signature),
                f"{header}.{claims}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
            body = json.loads(_unpad(claims))
        except (ValueError, InvalidSignature) as exc:
            return [*found, f"bad JWT signature ({type(exc).__name__})"], (
                400,
                {"error": "invalid_grant"},
            )
        if body.get("scope") != FCM_SCOPE:
            found.append(f"bad scope {body.get('scope')}")
        if body.get("aud") != self.token_url:
            found.append("bad audience")
        reply: dict[str, JSONValue] = {
            "access_token": self.access_token,
            "expires_in": 3600,
            "token_type": "Bearer",
        }
        return found, (200, reply)

    def refusal(self, request: HttpRequest) -> tuple[str, Reply] | None:
        """What is wrong with a send's path or bearer token, and FCM's answer to it."""
        if request.path != self.send_path:
            return f"bad path {request.path}", self.error(404, "NOT_FOUND")
        if request.headers.get("authorization") != f"Bearer {self.access_token}":
            return "bad bearer token", self.error(401, "UNAUTHENTICATED")
        return None

    @staticmethod
    def error(code: int, status: str, error_code: str | None = None) -> Reply:
        """FCM's error body (``error_code``: the FcmError detail, e.g. ``UNREGISTERED``)."""
        error: dict[str, JSONValue] = {"code": code, "status": status}
        if error_code:
            error["details"] = [
                {
                    "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                    "errorCode": error_code,
                }
            ]
        return code, {"error": error}

    def sent(self) -> Reply:
        """FCM's answer to a message it accepted."""
        return 200, {"name": f"projects/{self.project_id}/messages/{secrets.token_hex(6)}"}
