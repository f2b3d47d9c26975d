"""The channel interface: what every delivery channel implements."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from definitions.steps.send import SendStep

__all__ = ["MESSAGE_ID_HEADER", "Channel", "Delivery", "Outgoing", "Render", "Withdrawn"]

MESSAGE_ID_HEADER = "x-journeys-message-id"
"""The header that carries a message's id to the provider (email: in the message itself),
so what a provider or a local catcher received can be matched to the message log."""

Render = Callable[[str], str]
"""Renders a template string with the message's variables."""


class Withdrawn(Exception):
    """Raised by :attr:`Outgoing.handover` when the message was withdrawn meanwhile."""


async def _ready() -> None:
    return None


@dataclass(frozen=True)
class Outgoing:
    """A rendered message ready for a channel."""

    message_id: str
    """Deterministic id (run, step, recipient, channel); the idempotency key where a
    provider takes one."""
    addresses: list[str]
    """Where it goes: one email address, phone number or URL; for push, every device token."""
    content: dict[str, Any]
    """The rendered variant fields (subject/html/text, body, title…)."""
    headers: dict[str, str] = field(default_factory=dict)
    """Extra headers (webhooks)."""
    transactional: bool = False
    unsubscribe_url: str | None = None
    """The recipient's one-click unsubscribe link, for non-transactional email."""
    date: datetime | None = None
    """When the message was first to go out (the email's ``Date``, the same on every
    retry); None for now."""
    handover: Callable[[], Awaitable[None]] = _ready
    """Awaited by the channel right before the message goes out — once it has its
    connection, before the first byte of the message — and never again for it. It raises
    :class:`Withdrawn` when the message may not go out any more (a cancel or an exit got
    there first): the channel then lets it propagate and sends nothing."""


@dataclass(frozen=True)
class Delivery:
    """What a provider said when it accepted a message."""

    provider_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    stale: list[str] = field(default_factory=list)
    """Addresses the provider says are gone (unregistered device tokens)."""


class Channel(Protocol):
    """A way to reach a person.

    ``addresses`` finds the recipient's addresses on this channel (an empty list: none),
    raising :class:`~definitions.errors.InvalidAddressError` for one that cannot be used;
    ``deliver`` awaits the message's ``handover`` right before it goes out, then sends,
    raising :class:`~definitions.errors.RetryableDeliveryError` or
    :class:`~definitions.errors.PermanentDeliveryError`, translated from the provider's own
    errors at this boundary.
    """

    name: str

    def addresses(self, profile: dict[str, Any], step: SendStep, render: Render) -> list[str]:
        """The recipient's addresses on this channel."""

    async def deliver(self, message: Outgoing) -> Delivery:
        """Send a message."""

    async def close(self) -> None:
        """Release connections."""
