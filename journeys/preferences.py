"""``journeys.preferences``: read and change what recipients receive (synchronous).

Example::

    from journeys import preferences
    preferences.update("u42", channels={"sms": True})      # opt out of SMS
    preferences.update("u42", topics={"newsletter": False})
    preferences.unsubscribe(token)                          # from an unsubscribe link
    preferences.suppress("bounced@example.com", kind="address", reason="hard bounce")
"""

from __future__ import annotations

from collections.abc import Mapping

from journeys.consent import Preferences
from journeys.sync import call

__all__ = ["Preferences", "get", "suppress", "unsubscribe", "unsuppress", "update"]


def get(recipient: str) -> Preferences:
    """A recipient's preferences."""
    return call(lambda client: client.preferences(recipient))


def update(
    recipient: str,
    *,
    unsubscribed: bool | None = None,
    channels: Mapping[str, bool] | None = None,
    topics: Mapping[str, bool] | None = None,
) -> Preferences:
    """Change a recipient's preferences; see :meth:`JourneysClient.update_preferences`."""
    return call(
        lambda client: client.update_preferences(
            recipient, unsubscribed=unsubscribed, channels=channels, topics=topics
        )
    )


def unsubscribe(token: str) -> Preferences:
    """Apply a signed unsubscribe token; see :meth:`JourneysClient.unsubscribe`."""
    return call(lambda client: client.unsubscribe(token))


def suppress(value: str, *, reason: str, kind: str = "person") -> None:
    """Stop every message to a person or an address."""
    call(lambda client: client.suppress(value, reason=reason, kind=kind))


def unsuppress(value: str, *, kind: str = "person") -> None:
    """Lift a suppression."""
    call(lambda client: client.unsuppress(value, kind=kind))
