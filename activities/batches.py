"""The activities that work on many recipients at once: batches, claims, closes, withdrawals.

The workflow side calling them is :mod:`definitions.batches` (conditions, closes)
and :mod:`definitions.send_rounds` (sends, withdrawals).

Each does for many recipients what its single counterpart does for one, with the same
rules: a batch of sends runs every message through :meth:`JourneyActivities.deliver`
(preferences, the message log, error translation), so a retried batch resends nothing
already recorded; a batch of conditions is one SQL query per few hundred people.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.conditions import evaluate
from activities.messages import Known, gives_up, heartbeating, message_id_for, next_delay
from definitions import contract as c
from definitions.errors import RetryableDeliveryError
from journeys.store import MessageRecord
from journeys.store.messages import MessageKey

if TYPE_CHECKING:
    from journeys.store import Store

__all__ = ["OUTAGE_AFTER", "SENDS_AT_ONCE", "WITHDRAW_WAIT", "BatchActivities"]

log = logging.getLogger(__name__)

SENDS_AT_ONCE = 32
"""Messages in flight at once in a worker process, across all its batches: more only queue
for the store's connections (channels pool their own connections too)."""
OUTAGE_AFTER = 5
"""Transient failures in a row (no message sent between them) after which a batch stops
trying its other messages in this attempt: the provider is down, and the whole batch is
retried after the backoff instead of each message meeting the outage on its own."""
WITHDRAW_WAIT = 60.0
"""Seconds a withdrawal waits for a message being handed to a provider right then; past
it, the attempt handing it over is taken to be gone."""


class BatchActivities:
    """Mixed into :class:`activities.journey.JourneyActivities`.

    Args:
        rate_limits: messages per second, by channel, this process sends at most.

    """

    store: Store

    def __init__(self, rate_limits: dict[str, float] | None = None) -> None:
        self.rate_limits = {k: v for k, v in (rate_limits or {}).items() if v}
        self._next_slot: dict[str, float] = {}
        self._sending: asyncio.Semaphore | None = None

    @property
    def sending(self) -> asyncio.Semaphore:
        """The process-wide limit of messages in flight (made on the worker's event loop)."""
        if self._sending is None:
            self._sending = asyncio.Semaphore(SENDS_AT_ONCE)
        return self._sending

    if TYPE_CHECKING:

        async def deliver(
            self, request: c.SendInput, known: Known | None = None
        ) -> c.SendResult: ...

    def batch_activities(self) -> list[Any]:
        """The batched and parent-workflow activities."""
        return [
            self.evaluate_conditions,
            self.evaluate_conditions_v2,
            self.send_messages,
            self.claim_cohort,
            self.close_runs,
            self.close_runs_v2,
            self.withdraw_messages,
        ]

    async def pace(self, channel: str) -> None:
        """Wait for the channel's next slot under its rate limit (in this process)."""
        rate = self.rate_limits.get(channel)
        if not rate:
            return
        now = time.monotonic()
        slot = max(now, self._next_slot.get(channel, now))
        self._next_slot[channel] = slot + 1 / rate
        if slot > now:
            await asyncio.sleep(slot - now)

    @activity.defn(name=c.SEND_MANY)
    async def send_messages(self, request: c.SendManyInput) -> c.SendManyResult:
        """Deliver a step's message on one channel to each run of the batch.

        A permanent failure fails that message only. A transient one is retried: when
        this attempt got other messages of the batch through, the batch answers at once
        with those marked ``retry`` (the workflow sends them again in a batch of their
        own, so they hold no one else); when it got none through, the batch is retried by
        Temporal (what went out is in the log and is not sent again). When the retry
        window ends (runs started before windows: on the final attempt) a transient error
        fails the message instead. After ``OUTAGE_AFTER`` transient failures in a row the
        provider is taken to be down: the messages not tried yet wait for a retry.
        """
        results: list[c.SendResult | None] = [None] * len(request.runs)
        retry: list[ApplicationError] = []
        known = await self._look_up(request)
        windowed = request.retry_until is not None
        last_try = gives_up(request.retry_until) if windowed else False
        failures_in_a_row = 0
        progress = 0

        async def one(i: int, run: c.RunInfo) -> None:
            nonlocal failures_in_a_row, progress
            data = request.data[i] if i < len(request.data) else {}
            single = c.SendInput(
                run,
                request.step,
                request.template,
                data,
                request.event,
                request.channel,
                retry_until=request.retry_until,
            )
            message_id = message_id_for(run, request.step.id, request.channel)
            waiting = c.SendResult(message_id, request.channel, "retry" if windowed else "failed")
            async with self.sending:
                earlier = known.messages.get(message_id)
                if earlier is not None and earlier.state == "failed":
                    # failed for good in an earlier attempt of this batch: stays failed
                    results[i] = c.SendResult(
                        earlier.id, request.channel, "failed", earlier.address, {}, earlier.reason
                    )
                    return
                if windowed and not last_try and failures_in_a_row >= OUTAGE_AFTER:
                    retry.append(ApplicationError("provider unavailable", type="Outage"))
                    results[i] = dataclasses.replace(waiting, reason="provider unavailable")
                    return
                try:
                    result = await self.deliver(single, known)
                except ApplicationError as exc:
                    if not RetryableDeliveryError.crossed(exc):  # failed for good
                        progress += 1
                        results[i] = c.SendResult("", request.channel, "failed", reason=exc.message)
                        return
                    retry.append(exc)
                    failures_in_a_row += 1
                    results[i] = dataclasses.replace(waiting, reason=exc.message)
                    return
                except Exception as exc:  # the store, a bug: this message only, retried
                    log.exception("%s: %s", message_id, exc)
                    retry.append(RetryableDeliveryError.crossing(str(exc)))
                    results[i] = dataclasses.replace(waiting, reason=str(exc))
                    return
                results[i] = result
                if not result.detail.get("recorded"):
                    progress += 1
                if result.state == "sent":
                    failures_in_a_row = 0

        # A batch waiting for its turn is alive; a dead worker's batch stops beating and
        # is retried elsewhere (what it sent is in the log).
        async with heartbeating():
            await asyncio.gather(*(one(i, run) for i, run in enumerate(request.runs)))
        if retry and windowed and progress:
            return c.SendManyResult([r for r in results if r is not None])  # with stragglers
        transient = [e for e in retry if RetryableDeliveryError.crossed(e)] or retry
        if retry and (windowed or activity.info().attempt < request.final_attempt):
            delays = [e.next_retry_delay for e in retry if e.next_retry_delay]
            summary = (
                f"{len(retry)} of {len(request.runs)} messages wait for a retry: "
                f"{transient[0].message}"
            )
            log.warning("%s (%s, attempt %d)", summary, request.step.id, activity.info().attempt)
            raise RetryableDeliveryError.crossing(
                summary,
                next_retry_delay=max(delays) if delays else (next_delay() if windowed else None),
                category=ApplicationErrorCategory.BENIGN,
            )
        return c.SendManyResult([r for r in results if r is not None])

    async def _look_up(self, request: c.SendManyInput) -> Known:
        """Read what every message of the batch needs at once; log the new ones as queued."""
        ids = [message_id_for(run, request.step.id, request.channel) for run in request.runs]
        recipients = [run.recipient_id for run in request.runs]
        messages = await self.store.messages.get_many(ids)
        fresh = [
            MessageRecord(
                message_id,
                run.workflow_id,
                run.run_id,
                request.step.id,
                run.recipient_id,
                request.channel,
                "queued",
            )
            for message_id, run in zip(ids, request.runs, strict=True)
            if message_id not in messages
        ]
        await self.store.messages.add(fresh)
        return Known(
            messages,
            await self.store.profiles.get_many(recipients),
            await self.store.consent.many_preferences(recipients),
        )

    @activity.defn(name=c.EVALUATE_MANY_V2)
    async def evaluate_conditions_v2(self, request: c.EvaluateManyInput) -> c.EvaluateManyResult:
        """The recipients (of those given) the condition holds for now, in their order."""
        now = datetime.now(UTC)
        matched, unknown = await self.store.segments.matching(
            request.condition, request.recipient_ids, now=now
        )
        for rid in unknown:  # no profile: the rules for an empty profile decide
            if await evaluate(request.condition, rid, self.store, now=now):
                matched.add(rid)
        return c.EvaluateManyResult([rid for rid in request.recipient_ids if rid in matched])

    @activity.defn(name=c.EVALUATE_MANY)
    async def evaluate_conditions(self, request: c.EvaluateManyInput) -> list[str]:
        """``evaluate_conditions_v2`` as a bare list, for runs started before typed results."""
        return (await self.evaluate_conditions_v2(request)).matched

    @activity.defn(name=c.CLAIM)
    async def claim_cohort(self, request: c.ClaimInput) -> c.ClaimResult:
        """Put the trigger's next page of recipients in a cohort (see MemberStore.claim)."""
        members, last, skipped = await self.store.members.claim(
            request.trigger_id, request.journey, request.workflow_id, request.after, request.limit
        )
        return c.ClaimResult(
            [c.CohortMember(rid, run_id, data) for rid, run_id, data in members], last, skipped
        )

    @activity.defn(name=c.CLOSE_V2)
    async def close_runs_v2(self, request: c.CloseInput) -> c.CloseResult:
        """Mark runs ended in the store, with their timelines, so status reads them there."""
        await self.store.runs.close(
            request.workflow_id,
            [
                (run_id, c.progress_json(progress))
                for run_id, progress in zip(request.run_ids, request.runs, strict=True)
            ],
        )
        return c.CloseResult(len(request.runs))

    @activity.defn(name=c.CLOSE)
    async def close_runs(self, request: c.CloseInput) -> None:
        """``close_runs_v2`` answering nothing, for runs started before typed results."""
        await self.close_runs_v2(request)

    @activity.defn(name=c.WITHDRAW)
    async def withdraw_messages(self, request: c.WithdrawInput) -> c.WithdrawResult:
        """Make sure messages are never sent: their recipients were cancelled or left.

        Each message still queued (or waiting for a retry) is marked withdrawn at once; one
        being handed to its provider right now is waited for, and reported as it ends.
        Returns what became of each message, in order.
        """
        keys = [
            MessageKey(
                ref.message_id,
                ref.run.workflow_id,
                ref.run.run_id,
                ref.step,
                ref.run.recipient_id,
                ref.channel,
            )
            for ref in request.messages
        ]
        deadline = time.monotonic() + WITHDRAW_WAIT
        withdrawn: set[str] = set()
        async with heartbeating():
            done = await self.store.messages.withdraw(keys, request.reason, state=request.state)
            withdrawn.update(done.withdrawn)
            while done.sending:
                if time.monotonic() > deadline:
                    withdrawn.update(
                        await self.store.messages.release(
                            done.sending,
                            f"{request.reason} (the attempt sending it stopped: "
                            "it may have gone out)",
                            state=request.state,
                        )
                    )
                    break
                await asyncio.sleep(0.1)
                waiting = set(done.sending)
                done = await self.store.messages.withdraw(
                    [k for k in keys if k.id in waiting], request.reason, state=request.state
                )
                withdrawn.update(done.withdrawn)
        found = await self.store.messages.get_many([k.id for k in keys])
        results = []
        for ref in request.messages:
            message = found.get(ref.message_id)
            if message is None:  # erased meanwhile
                results.append(
                    c.SendResult(ref.message_id, ref.channel, "skipped", None, {}, "erased")
                )
                continue
            results.append(
                c.SendResult(
                    message.id,
                    message.channel,
                    message.state,
                    message.address,
                    dict(message.detail),
                    message.reason,
                )
            )
        return c.WithdrawResult(results, [k.id in withdrawn for k in keys])
