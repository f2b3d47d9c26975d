"""Who may be written to: preferences, suppressions, and signed unsubscribe tokens.

Rules, checked at send time for every message:

- a **suppression** (the person, or the address, after a bounce or a complaint) stops
  every message, transactional or not;
- a **channel opt-out** stops every message on that channel;
- the **global unsubscribe** and a **topic opt-out** stop marketing messages; a send step
  marked ``transactional: true`` (a receipt, a password reset) goes through them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

from definitions.errors import InvalidTokenError

__all__ = [
    "InvalidTokenError",
    "Preferences",
    "blocked_reason",
    "sign_unsubscribe",
    "verify_unsubscribe",
]


@dataclass(frozen=True)
class Preferences:
    """A recipient's choices about what they receive."""

    recipient_id: str
    unsubscribed: bool = False
    """Unsubscribed from all marketing messages."""
    channels: dict[str, bool] = field(default_factory=dict)
    """Channel → opted out (True) or back in (False); absent means opted in."""
    topics: dict[str, bool] = field(default_factory=dict)
    """Topic → subscribed (True) or not (False); absent means subscribed."""


def blocked_reason(
    preferences: Preferences,
    *,
    channel: str,
    topic: str | None,
    transactional: bool,
    suppressed: str | None,
) -> str | None:
    """Why a message may not be sent, or None when it may.

    Args:
        preferences: the recipient's preferences.
        channel: the channel of the message.
        topic: the message's topic, if it has one.
        transactional: whether the send step is transactional.
        suppressed: the reason of a suppression that applies, if any.

    """
    if suppressed:
        return f"suppressed ({suppressed})"
    if preferences.channels.get(channel):
        return f"opted out of {channel}"
    if transactional:
        return None
    if preferences.unsubscribed:
        return "opted out (unsubscribed)"
    if topic is not None and preferences.topics.get(topic) is False:
        return f"opted out of topic {topic}"
    return None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_unsubscribe(
    secret: str, recipient_id: str, topic: str | None = None, *, issued_at: float | None = None
) -> str:
    """A token that unsubscribes a recipient (from a topic, or from all marketing).

    The token carries no guessable id: it is the recipient and topic, signed with HMAC-SHA256.

    Args:
        secret: the signing key.
        recipient_id: who the token unsubscribes.
        topic: from what; None for all marketing.
        issued_at: the Unix time it records as issued (default: now). A message's link is
            issued when the message was first to go out, so a retry carries the same link.

    """
    issued = time.time() if issued_at is None else issued_at
    body: dict[str, Any] = {"r": recipient_id, "iat": int(issued)}
    if topic:
        body["t"] = topic
    payload = _b64(json.dumps(body, separators=(",", ":")).encode())
    mac = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{_b64(mac)}"


def verify_unsubscribe(secret: str, token: str) -> tuple[str, str | None]:
    """The (recipient id, topic) of a token.

    Raises:
        InvalidTokenError: the token is malformed or its signature does not match.

    """
    if not isinstance(token, str) or token.count(".") != 1:
        raise InvalidTokenError("invalid unsubscribe token: expected <payload>.<signature>")
    try:
        payload, signature = token.split(".")
        expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(signature)):
            raise InvalidTokenError("invalid unsubscribe token: the signature does not match")
        body = json.loads(_unb64(payload))
        return str(body["r"]), body.get("t")
    except InvalidTokenError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidTokenError(f"invalid unsubscribe token: {exc}") from None
