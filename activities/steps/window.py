"""The window step's answer: seconds until the window opens, from each recipient's timezone."""

from __future__ import annotations

from typing import TYPE_CHECKING

from activities.steps.base import Answer
from definitions.steps import window
from definitions.steps.window import WindowManyInput, WindowManyResult, seconds_until_open

if TYPE_CHECKING:
    from journeys.store import Store

__all__ = ["DELAYS"]


async def _delays(store: Store, request: WindowManyInput) -> WindowManyResult:
    profiles = await store.profiles.get_many(request.recipient_ids)
    return WindowManyResult(
        [
            seconds_until_open(request.step, request.now, profiles.get(rid, {}).get("timezone"))
            for rid in request.recipient_ids
        ]
    )


DELAYS = Answer(window.DELAYS, _delays)
"""``window_delays_v2`` (and, for runs started before typed results, ``window_delays``)."""
