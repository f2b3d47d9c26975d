"""A channel for the tests only: homing pigeons, to show a channel is one file.

Everything about the channel is here — its ``[pigeon]`` settings on the shared base, its
secret (``JOURNEYS_PIGEON_KEY``), its template variant (``pigeon: {note, ring}``), its
address rule (the profile's ``loft``), its provider call and the translation of the
provider's errors — and ``CHANNELS.register(CHANNEL)`` is the one line that makes the
compiler, the configuration, the batch sizes and the worker's task queues know it.

The provider is :data:`SKY`, in the test's process: it records what it carries, and
storms (a transient failure) or unknown lofts (a permanent one) can be arranged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pydantic import Field

from activities.channels.base import Delivery, Outgoing, Render
from definitions.channels import ChannelSettings, ChannelSpec
from definitions.errors import InvalidAddressError, PermanentDeliveryError, RetryableDeliveryError
from definitions.model import SchemaModel

__all__ = ["CHANNEL", "SKY", "PigeonChannel", "PigeonSettings", "PigeonVariant"]

_LOFT = re.compile(r"^[a-z]+$")


class PigeonVariant(SchemaModel):
    """A note, and a ring: a JSON value whose strings are templates too."""

    note: str
    ring: Any = None


class PigeonSettings(ChannelSettings):
    """Where the pigeons live (``[pigeon]``)."""

    coop: str = "home"
    key: str | None = Field(default=None, repr=False)
    """The coop's key (only from JOURNEYS_PIGEON_KEY)."""


class Storm(Exception):
    """The provider's own error: the bird turned back; try later."""


class UnknownLoft(Exception):
    """The provider's own error: no such loft."""


@dataclass
class Sky:
    """The provider: carries notes from a coop to lofts."""

    carried: list[dict[str, Any]] = field(default_factory=list)
    storms: dict[str, int] = field(default_factory=dict)
    """Flights to turn back, by loft."""
    lofts: set[str] = field(default_factory=lambda: {"north", "south"})

    def fly(self, coop: str, loft: str, note: str, ring: Any, message_id: str) -> str:
        if loft not in self.lofts:
            raise UnknownLoft(loft)
        if self.storms.get(loft):
            self.storms[loft] -= 1
            raise Storm(f"storm over {loft}")
        self.carried.append(
            {"coop": coop, "loft": loft, "note": note, "ring": ring, "id": message_id}
        )
        return f"flight-{len(self.carried)}"


SKY = Sky()


class PigeonChannel:
    """Sends the template's ``pigeon`` note to the profile's ``loft``."""

    name = "pigeon"

    def __init__(self, settings: PigeonSettings) -> None:
        self.settings = settings

    def addresses(self, profile: dict[str, Any], step: Any, render: Render) -> list[str]:
        """The profile's ``loft``: a lowercase word."""
        loft = profile.get("loft")
        if loft is None or loft == "":
            return []
        if not isinstance(loft, str) or not _LOFT.match(loft):
            raise InvalidAddressError(f"invalid loft {loft!r}")
        return [loft]

    async def deliver(self, message: Outgoing) -> Delivery:
        """Fly; a storm is retried, an unknown loft is not."""
        if not self.settings.key:
            raise PermanentDeliveryError("pigeon is not configured: set JOURNEYS_PIGEON_KEY")
        await message.handover()
        try:
            flight = SKY.fly(
                self.settings.coop,
                message.addresses[0],
                str(message.content.get("note", "")),
                message.content.get("ring"),
                message.message_id,
            )
        except Storm as exc:
            raise RetryableDeliveryError(str(exc), retry_after=0.2) from exc
        except UnknownLoft as exc:
            raise PermanentDeliveryError(f"no loft {exc}") from exc
        return Delivery(provider_id=flight)

    async def close(self) -> None:
        """Nothing to release."""


CHANNEL = ChannelSpec(
    name="pigeon",
    variant=PigeonVariant,
    settings=PigeonSettings,
    open=PigeonChannel,
    secrets=("key",),
    retry_window=timedelta(minutes=10),
)
