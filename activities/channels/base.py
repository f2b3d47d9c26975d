"""The channel interface: what every delivery channel implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Channel", "Delivery", "Outgoing"]


@dataclass(frozen=True)
class Outgoing:
    """A rendered message ready for a channel."""

    message_id: str
    """Deterministic id (run, step, channel): idempotency key for providers that take one."""
    address: str
    """Where it goes: an email address, a URL, a phone number, a device token."""
    content: dict[str, Any]
    """The rendered variant fields (subject/html/text, body…)."""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Delivery:
    """What a provider said when it accepted a message."""

    provider_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


class Channel(Protocol):
    """A way to reach a person.

    ``address`` finds the recipient's address for this channel (None: not reachable);
    ``deliver`` sends, raising :class:`~definitions.errors.RetryableDeliveryError` or
    :class:`~definitions.errors.PermanentDeliveryError` on failure, translated from the
    provider's own errors at this boundary.
    """

    name: str

    def address(self, profile: dict[str, Any], step: Any, render: Any) -> str | None:
        """The recipient's address on this channel, or None."""

    async def deliver(self, message: Outgoing) -> Delivery:
        """Send a message."""

    async def close(self) -> None:
        """Release connections."""
