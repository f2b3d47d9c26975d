"""What the send activities share: message ids, and what a batch read for its messages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from definitions import contract as c
from journeys.consent import Preferences
from journeys.store import MessageRecord

__all__ = ["DONE_STATES", "Known", "message_id_for"]

DONE_STATES = ("sent", "delivered", "skipped")
"""Message states after which a message is never sent again."""


def message_id_for(run: c.RunInfo, step: str, channel: str) -> str:
    """The deterministic id of a step's message on a channel in a run."""
    return f"{run.workflow_id}/{run.run_id}/{step}/{channel}"


@dataclass(frozen=True)
class Known:
    """What a batch of sends read from the store at once, for every message in it."""

    messages: dict[str, MessageRecord]
    """The log's earlier records of the batch's messages."""
    profiles: dict[str, dict[str, Any]]
    preferences: dict[str, Preferences]
