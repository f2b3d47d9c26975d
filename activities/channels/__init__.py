"""Delivery channels: one module each, registered here with one line.

A channel module (``email.py``…) holds everything about its channel: its settings section
(on :class:`~definitions.channels.ChannelSettings`), its template variant, its address rule
and provider call with the translation of the provider's errors (its ``Channel`` class),
its secrets — gathered in a :class:`~definitions.channels.ChannelSpec` named ``CHANNEL``.
Registering the spec in :data:`~definitions.channels.CHANNELS` is all it takes for the
compiler, the configuration, the batch sizes and the worker's task queues to know it.

Importing this package registers the built-in channels; ``journeys`` and ``workers``
import it before anything reads the registry.
"""

from __future__ import annotations

from activities.channels import email, push, sms, webhook
from activities.channels.base import Channel, Delivery, Outgoing, Withdrawn
from activities.channels.email import EmailChannel
from activities.channels.push import PushChannel
from activities.channels.sms import SmsChannel
from activities.channels.webhook import WebhookChannel
from definitions.channels import CHANNELS
from journeys.config import Settings

__all__ = [
    "Channel",
    "Delivery",
    "EmailChannel",
    "Outgoing",
    "PushChannel",
    "SmsChannel",
    "WebhookChannel",
    "Withdrawn",
    "build_channels",
]

CHANNELS.register(email.CHANNEL)
CHANNELS.register(sms.CHANNEL)
CHANNELS.register(push.CHANNEL)
CHANNELS.register(webhook.CHANNEL)


def build_channels(settings: Settings) -> dict[str, Channel]:
    """Every registered channel, configured from its section of the settings, by name."""
    return {name: spec.open(settings.channel(name)) for name, spec in CHANNELS.items()}
