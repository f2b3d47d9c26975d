"""Calls made while an earlier one is running share one trip to the database.

A worker hands many messages to providers at once, and each passes the send gate on its
own: a claim just before its provider call, its outcome recorded just after. One
transaction each costs a few driver round trips and (on SQLite) a turn at the single
writer and a commit. A :class:`Coalescer` lets each caller still ask for one item and
wait until that item's own statement has committed, while the calls that arrive during
a trip go together in the next one: nothing waits for a group to fill, so a lone call
goes at once, and under load the trips grow instead of queueing.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["Coalescer"]

log = logging.getLogger(__name__)

_Item = TypeVar("_Item")
_Answer = TypeVar("_Answer")


@dataclass
class _Queue(Generic[_Item, _Answer]):
    """The calls waiting on one event loop, and the task taking them in groups."""

    waiting: list[tuple[_Item, asyncio.Future[_Answer]]] = field(default_factory=list)
    runner: asyncio.Task[None] | None = None


class Coalescer(Generic[_Item, _Answer]):
    """Runs ``many`` for the items of the calls that came together; answers each call.

    A group that fails is run again item by item, so an error reaches only the calls it
    belongs to. A call cancelled before its group starts is left out of it.

    Args:
        many: does the work for a group of items; returns an answer per item, in order.
        most: the largest group.
        key: items with the same key never share a group (a later one waits for the next),
            so a group can be one statement that touches each row once.

    """

    def __init__(
        self,
        many: Callable[[list[_Item]], Awaitable[Sequence[_Answer]]],
        *,
        most: int = 100,
        key: Callable[[_Item], Hashable] | None = None,
    ) -> None:
        self.many = many
        self.most = most
        self.key = key
        self._queues: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, _Queue[_Item, _Answer]
        ] = weakref.WeakKeyDictionary()

    async def __call__(self, item: _Item) -> _Answer:
        """The answer for one item, once the group it went in has run."""
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = _Queue()
        answer: asyncio.Future[_Answer] = loop.create_future()
        queue.waiting.append((item, answer))
        if queue.runner is None or queue.runner.done():
            queue.runner = loop.create_task(self._run(queue))
        return await answer

    def _next_group(
        self, queue: _Queue[_Item, _Answer]
    ) -> list[tuple[_Item, asyncio.Future[_Answer]]]:
        group: list[tuple[_Item, asyncio.Future[_Answer]]] = []
        rest: list[tuple[_Item, asyncio.Future[_Answer]]] = []
        keys: set[Hashable] = set()
        for entry in queue.waiting:
            if entry[1].done():  # its caller was cancelled before the group ran
                continue
            if len(group) >= self.most:
                rest.append(entry)
                continue
            if self.key is not None:
                key = self.key(entry[0])
                if key in keys:
                    rest.append(entry)
                    continue
                keys.add(key)
            group.append(entry)
        queue.waiting = rest
        return group

    async def _run(self, queue: _Queue[_Item, _Answer]) -> None:
        group: list[tuple[_Item, asyncio.Future[_Answer]]] = []
        try:
            while queue.waiting:
                group = self._next_group(queue)
                if group:
                    await self._group(group)
        except BaseException:  # the loop is closing: no call may wait for ever
            for _, future in [*group, *queue.waiting]:
                future.cancel()
            queue.waiting = []
            raise

    async def _group(self, group: list[tuple[_Item, asyncio.Future[_Answer]]]) -> None:
        try:
            answers = await self.many([item for item, _ in group])
        except Exception as exc:
            if len(group) == 1:
                _answer(group[0][1], error=exc)
                return
            log.warning(
                "%d calls of %s failed together (%s): each goes alone",
                len(group),
                self.many.__qualname__,
                exc,
            )
            for entry in group:  # which item failed it is not known: each on its own
                await self._alone(entry)
            return
        for (_, future), answer in zip(group, answers, strict=True):
            _answer(future, answer)

    async def _alone(self, entry: tuple[_Item, asyncio.Future[_Answer]]) -> None:
        item, future = entry
        if future.done():
            return
        try:
            [answer] = await self.many([item])
        except Exception as exc:
            _answer(future, error=exc)
            return
        _answer(future, answer)


def _answer(
    future: asyncio.Future[_Answer],
    answer: _Answer | None = None,
    *,
    error: BaseException | None = None,
) -> None:
    """Answer a call unless its caller stopped waiting."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(answer)  # type: ignore[arg-type]
