"""The delivery channels the language knows, and what a template gives each of them."""

from __future__ import annotations

__all__ = ["CHANNELS", "TEMPLATE_FIELDS", "check_channel"]

from definitions.diagnostics import closest, shown
from definitions.model import invalid

TEMPLATE_FIELDS: dict[str, dict[str, bool]] = {
    "email": {"subject": True, "html": False, "text": False},
    "sms": {"body": True},
    "push": {"title": False, "body": True, "data": False},
    "webhook": {"body": False},
}
"""For each channel, the fields of its template variant and whether each is required."""

CHANNELS: tuple[str, ...] = tuple(TEMPLATE_FIELDS)


def check_channel(value: str) -> str:
    """Validate a channel name against the known channels."""
    if value not in CHANNELS:
        raise invalid(
            f"expected a channel ({', '.join(CHANNELS)}), "
            f"found {shown(value)}{closest(value, CHANNELS)}"
        )
    return value
