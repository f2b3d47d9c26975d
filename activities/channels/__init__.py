"""Delivery channels, one module each, built from the settings in one place."""

from __future__ import annotations

from activities.channels.base import Channel, Delivery, Outgoing, Withdrawn
from activities.channels.email import EmailChannel
from activities.channels.push import PushChannel
from activities.channels.sms import SmsChannel
from activities.channels.webhook import WebhookChannel
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


def build_channels(settings: Settings) -> dict[str, Channel]:
    """Every channel, configured, by name."""
    return {
        "email": EmailChannel(settings.email),
        "sms": SmsChannel(settings.sms),
        "push": PushChannel(settings.push),
        "webhook": WebhookChannel(settings.webhook),
    }
