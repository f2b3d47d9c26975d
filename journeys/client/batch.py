"""Batches: operations on people applied in order, each with its own result."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from definitions.errors import InvalidRequestError, JourneysError
from definitions.values import require_timestamp
from journeys.client.checks import check_id
from journeys.client.context import ClientContext
from journeys.client.people import People
from journeys.models import RunHandle

__all__ = ["TOGETHER", "Batch", "BatchResult"]

log = logging.getLogger("journeys.people")


@dataclass(frozen=True)
class BatchResult:
    """The outcome of one operation of a batch."""

    index: int
    ok: bool
    error: str | None = None
    started: list[str] = field(default_factory=list)
    """Run ids of journeys the operation started."""


class Batch:
    """A batch of people operations (the HTTP API's ``/v1/batch``).

    Args:
        context: the client's connections and settings.
        people: where each operation is applied.

    """

    def __init__(self, context: ClientContext, people: People) -> None:
        self.context = context
        self.people = people

    async def batch(self, operations: Sequence[Mapping[str, Any]]) -> list[BatchResult]:
        """Apply operations in order, each with its own result.

        Types: identify, track, track_anonymous, delete, add_device, remove_device,
        suppress, unsuppress, merge.

        A ``track`` does not wait for the operations before it unless one of them is
        about the same person or has the same ``event_id``: tracks about different
        people are applied together, up to :data:`TOGETHER` at a time (their events are
        recorded in shared transactions, and what each starts or signals is worked out
        at the same time). Any other operation waits for everything before it, and
        everything after waits for it. Nothing about one person depends on another's
        events, so the results are those of applying them one after the other.
        """
        results: list[BatchResult] = []
        pending: list[asyncio.Task[BatchResult]] = []
        last: dict[tuple[str, str], asyncio.Task[BatchResult]] = {}
        room = asyncio.Semaphore(TOGETHER)
        try:
            for index, op in enumerate(operations):
                keys = _keys(op)
                if keys is None:
                    results += await asyncio.gather(*pending)
                    pending, last = [], {}
                    results.append(await self._one(index, op))
                    continue
                before = [last[k] for k in keys if k in last]
                task = asyncio.create_task(self._in_turn(before, room, index, op))
                pending.append(task)
                for key in keys:
                    last[key] = task
            results += await asyncio.gather(*pending)
        finally:
            for task in pending:
                task.cancel()
        return results

    async def _in_turn(
        self,
        before: list[asyncio.Task[BatchResult]],
        room: asyncio.Semaphore,
        index: int,
        op: Mapping[str, Any],
    ) -> BatchResult:
        """Apply a track once the operations it must follow are done."""
        if before:
            await asyncio.wait(before)
        async with room:
            return await self._one(index, op)

    async def _one(self, index: int, op: Mapping[str, Any]) -> BatchResult:
        """One operation's result: its runs started, or its error."""
        try:
            started = await self._apply(op)
        except InvalidRequestError as exc:
            return BatchResult(index, False, "; ".join(exc.problems) or str(exc))
        except (JourneysError, ValueError, KeyError, TypeError) as exc:
            message = str(exc.args[0]) if isinstance(exc, KeyError) else str(exc)
            return BatchResult(index, False, message)
        except Exception:  # one operation's failure is its own result, never the batch's
            log.exception("batch operation %d (%s) failed", index, op.get("type"))
            return BatchResult(index, False, "internal error: see the server log")
        return BatchResult(index, True, None, [r.run_id for r in started])

    async def _apply(self, op: Mapping[str, Any]) -> list[RunHandle]:
        kind = op.get("type")
        if kind == "invalid":
            raise ValueError(op.get("error") or "invalid operation")
        if kind == "identify":
            return await self.people.identify(
                op["id"], op.get("attributes") or {}, anonymous_id=op.get("anonymous_id")
            )
        if kind == "track":
            result = await self.people.track(
                op["id"],
                op["event"],
                op.get("data"),
                timestamp=require_timestamp(op.get("timestamp")),
                event_id=op.get("event_id"),
            )
            return result.started
        if kind == "track_anonymous":
            await self.people.track_anonymous(
                op.get("anonymous_id"),
                op["event"],
                op.get("data"),
                timestamp=require_timestamp(op.get("timestamp")),
                event_id=op.get("event_id"),
            )
            return []
        if kind == "delete":
            await self.people.delete_person(check_id(op["id"]))
            return []
        if kind == "add_device":
            await self.people.add_device(
                op["id"],
                op["token"],
                op.get("platform") or "unknown",
                attributes=op.get("attributes"),
            )
            return []
        if kind == "remove_device":
            await self.people.remove_device(check_id(op["id"]), check_id(op["token"], "token"))
            return []
        if kind in ("suppress", "unsuppress"):
            if kind == "suppress":
                await self.context.store.consent.suppress(
                    "person", check_id(op["id"]), op.get("reason") or "suppressed through the API"
                )
            else:
                await self.context.store.consent.unsuppress("person", check_id(op["id"]))
            return []
        if kind == "merge":
            await self.people.merge_people(op["primary"], op["secondary"])
            return []
        raise ValueError(
            f"type: expected identify, track, track_anonymous, delete, "
            f"add_device, remove_device, suppress, unsuppress or merge, "
            f"found {kind!r}"
        )


TOGETHER = 200
"""``track`` operations of a batch applied at the same time at most."""


def _keys(op: Mapping[str, Any]) -> set[tuple[str, str]] | None:
    """What a ``track`` must wait for (its person, its event id); None: not a track.

    Anything else waits for every operation before it.
    """
    if op.get("type") != "track" or not isinstance(op.get("id"), str):
        return None
    keys = {("person", op["id"])}
    if op.get("event_id") is not None:
        keys.add(("event", repr(op.get("event_id"))))
    return keys
