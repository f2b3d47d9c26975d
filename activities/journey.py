"""The activities a journey workflow calls for one recipient: evaluate, send and window.

Their batched counterparts are in :mod:`activities.batches`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from temporalio import activity
from temporalio.exceptions import ApplicationErrorCategory

from activities.batches import BatchActivities
from activities.channels import Channel, Outgoing, Withdrawn
from activities.conditions import evaluate
from activities.messages import (
    DONE_STATES,
    Known,
    gave_up,
    gives_up,
    heartbeating,
    message_id_for,
    next_delay,
)
from activities.rendering import render_variant, variables
from activities.steps import ANSWERS
from definitions import contract as c
from definitions.errors import (
    InvalidAddressError,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from definitions.steps.window import seconds_until_open
from definitions.templates import RenderError, render_string
from definitions.values import JSONValue
from journeys.config import PreferenceSettings
from journeys.consent import blocked_reason, sign_unsubscribe
from journeys.store import MessageRecord, Store

__all__ = ["DONE_STATES", "JourneyActivities", "Known", "message_id_for"]

log = logging.getLogger(__name__)


class JourneyActivities(BatchActivities):
    """The activities, sharing one store and one set of channels.

    Args:
        store: the store profiles, events, preferences and messages live in.
        channels: the delivery channels by name.
        preferences: unsubscribe link settings.
        rate_limits: messages per second, by channel, that this process sends at most.

    """

    def __init__(
        self,
        store: Store,
        channels: dict[str, Channel],
        preferences: PreferenceSettings | None = None,
        *,
        rate_limits: dict[str, float] | None = None,
    ) -> None:
        super().__init__(rate_limits)
        self.store = store
        self.channels = channels
        self.preferences = preferences or PreferenceSettings()

    def all(self) -> list[Any]:
        """The activity callables of the main task queue."""
        return [
            self.evaluate_condition,
            self.evaluate_condition_v2,
            self.send_message,
            self.window_delay,
            *self.batch_activities(),
            *ANSWERS.activities(self.store),  # the step kinds' questions (window's delays…)
        ]

    def sends(self) -> list[Any]:
        """The activity callables of a channel's task queue."""
        return [self.send_message, self.send_messages]

    @activity.defn(name=c.EVALUATE_V2)
    async def evaluate_condition_v2(self, request: c.EvaluateInput) -> c.EvaluateResult:
        """Whether a condition holds for the recipient now."""
        return c.EvaluateResult(await evaluate(request.condition, request.recipient_id, self.store))

    @activity.defn(name=c.EVALUATE)
    async def evaluate_condition(self, request: c.EvaluateInput) -> bool:
        """``evaluate_condition_v2`` as a bare bool, for runs started before typed results."""
        return (await self.evaluate_condition_v2(request)).holds

    @activity.defn(name=c.WINDOW)
    async def window_delay(self, request: c.WindowInput) -> float:
        """Seconds from the workflow's ``now`` until the window opens for the recipient.

        Called only by runs started before cohorts (:mod:`definitions.legacy`); the cohort
        interpreter asks ``window_delays_v2`` even for a cohort of one.
        """
        profile = await self.store.profiles.get(request.recipient_id) or {}
        return seconds_until_open(request.step, request.now, profile.get("timezone"))

    def unsubscribe_url(
        self, recipient_id: str, topic: str | None, *, issued: datetime | None = None
    ) -> str | None:
        """The recipient's signed one-click unsubscribe link, when links are configured.

        Args:
            recipient_id: who the link unsubscribes.
            topic: from what; None for all marketing.
            issued: when the token says it was issued (default: now): the message's first
                due time, so every attempt at a message carries the same link.

        """
        base, secret = self.preferences.unsubscribe_url, self.preferences.signing_secret
        if not base or not secret:
            return None
        joiner = "&" if "?" in base else "?"
        at = issued.timestamp() if issued else None
        token = sign_unsubscribe(secret, recipient_id, topic, issued_at=at)
        return base + joiner + urlencode({"token": token})

    @activity.defn(name=c.SEND)
    async def send_message(self, request: c.SendInput) -> c.SendResult:
        """Check preferences, render and deliver one message on one channel.

        The message log is read before the provider call and written right after it, so a
        retried activity or a replay never sends a message already recorded as sent.
        Skips (no address, invalid address, opted out, suppressed) return normally; a
        permanent failure raises a non-retryable ``PermanentDeliveryError``; a transient
        one is retried until the message's retry window ends, then fails it.
        """
        async with heartbeating(), self.sending:
            return await self.deliver(request)

    async def deliver(self, request: c.SendInput, known: Known | None = None) -> c.SendResult:  # noqa: C901  (one message's whole way out, each exit a recorded outcome)
        """The body of ``send_message``, shared with the batched ``send_messages``.

        Args:
            request: the message.
            known: what a batch already read from the store for all its messages (and the
                ``queued`` record it already wrote); None to read it here.

        """
        step, run = request.step, request.run
        channel_name = request.channel or step.channel
        message_id = message_id_for(run, step.id, channel_name)
        earlier = (
            known.messages.get(message_id) if known else await self.store.messages.get(message_id)
        )
        if earlier is not None and earlier.state in DONE_STATES:
            return _recorded(earlier)
        channel = self.channels[channel_name]
        profile = (
            known.profiles.get(run.recipient_id)
            if known
            else await self.store.profiles.get(run.recipient_id)
        ) or {"id": run.recipient_id}
        first_due = _first_due(earlier)
        link = self.unsubscribe_url(run.recipient_id, step.topic, issued=first_due)
        names = variables(request, profile, message_id, link)

        def record(
            state: str,
            address: str | None = None,
            *,
            reason: str | None = None,
            provider_id: str | None = None,
            **detail: JSONValue,
        ) -> MessageRecord:
            return MessageRecord(
                message_id,
                run.workflow_id,
                run.run_id,
                step.id,
                run.recipient_id,
                channel_name,
                state,
                address,
                detail,
                provider_id=provider_id,
                reason=reason,
            )

        async def skip(reason: str, address: str | None = None) -> c.SendResult:
            await self.store.messages.save(record("skipped", address, reason=reason))
            return c.SendResult(message_id, channel_name, "skipped", address, {}, reason)

        try:
            addresses = channel.addresses(
                profile, step, lambda text: render_string("liquid", text, names)
            )
        except InvalidAddressError as exc:
            return await skip(f"invalid address: {exc}")
        except RenderError as exc:
            return await self._fail(record("failed", reason=f"render: {exc}"))
        if not addresses:
            return await skip("no address")
        shown = ", ".join(addresses)
        prefs = (
            known.preferences[run.recipient_id]
            if known
            else await self.store.consent.preferences(run.recipient_id)
        )
        suppressed = await self.store.consent.suppression(run.recipient_id, addresses)
        blocked = blocked_reason(
            prefs,
            channel=channel_name,
            topic=step.topic,
            transactional=step.transactional,
            suppressed=suppressed,
        )
        if blocked:
            return await skip(blocked, shown)
        try:
            content = render_variant(request.template, channel_name, names)
        except RenderError as exc:
            return await self._fail(record("failed", shown, reason=f"render: {exc}"))

        await self.pace(channel_name)
        claimed: str | None = None

        async def handover() -> None:
            # The gate, passed once the channel holds its connection: from here the
            # message is "sending" until the provider answers. A cancel or exit that
            # withdrew it first wins, and it is not sent.
            nonlocal claimed
            claimed = await self.store.messages.claim(record("sending", shown))
            if claimed is None:
                raise Withdrawn(message_id)

        outgoing = Outgoing(
            message_id,
            addresses,
            content,
            dict(step.headers),
            step.transactional,
            link,
            first_due,
            handover=handover,
        )
        try:
            delivery = await channel.deliver(outgoing)
        except Withdrawn:
            settled = await self.store.messages.get(message_id)
            if settled is None:  # erased meanwhile (the person was deleted)
                return c.SendResult(message_id, channel_name, "skipped", shown, {}, "erased")
            if settled.state == "failed":
                return await self._fail(settled)
            return _recorded(settled)
        except PermanentDeliveryError as exc:
            await self._forget(run.recipient_id, exc.stale)
            return await self._fail(record("failed", shown, reason=str(exc)))
        except RetryableDeliveryError as exc:
            await self._forget(run.recipient_id, exc.stale)
            attempt = activity.info().attempt
            if gives_up(request.retry_until, exc.retry_after):
                return await self._fail(
                    record("failed", shown, reason=gave_up(str(exc)), attempt=attempt)
                )
            requeued = record("queued", shown, last_error=str(exc), attempt=attempt)
            if _maybe_sent(claimed, earlier):  # the next attempt's send may be a duplicate
                requeued.detail["possible_duplicate"] = True
            await self.store.messages.save(requeued)
            if known is None:  # a batch logs its retries once, for all its messages
                log.warning("%s: %s (attempt %d, will retry)", message_id, exc, attempt)
            delay = next_delay(exc.retry_after) if request.retry_until else None
            if delay is None and exc.retry_after:  # runs started before retry windows
                delay = timedelta(seconds=exc.retry_after)
            # Benign: an expected outcome, recorded in the log; the SDK logs no traceback.
            raise RetryableDeliveryError.crossing(
                str(exc),
                next_retry_delay=delay,
                category=ApplicationErrorCategory.BENIGN,
            ) from exc
        await self._forget(run.recipient_id, delivery.stale)
        detail = {**delivery.detail, "sent_at": datetime.now(UTC).isoformat()}
        if _maybe_sent(claimed, earlier):  # an attempt died handing it over: it may have gone twice
            detail["possible_duplicate"] = True
        await self.store.messages.save(
            record("sent", shown, provider_id=delivery.provider_id, **detail)
        )
        if delivery.provider_id:
            detail["provider_id"] = delivery.provider_id
        return c.SendResult(message_id, channel_name, "sent", shown, detail)

    async def _fail(self, message: MessageRecord) -> c.SendResult:
        """Record a message failed for good and raise the non-retryable error."""
        await self.store.messages.save(message)
        log.warning("%s failed: %s", message.id, message.reason)
        raise PermanentDeliveryError.crossing(
            message.reason or "failed",
            non_retryable=True,
            category=ApplicationErrorCategory.BENIGN,
        )

    async def _forget(self, recipient_id: str, stale: list[str]) -> None:
        """Delete the tokens a provider says are gone from the person's devices."""
        if stale:
            await self.store.profiles.remove_devices(recipient_id, stale)


def _first_due(earlier: MessageRecord | None) -> datetime | None:
    """When a message was first to go out: the ``Date`` of every attempt at an email.

    The activity's ``scheduled_time`` stays the same across its retries; a message retried
    by another activity (a cohort's straggler) was logged earlier, so the earlier of the
    two times is taken.
    """
    times = [activity.info().scheduled_time] if activity.in_activity() else []
    if earlier is not None and earlier.created_at is not None:
        created = earlier.created_at
        times.append(created if created.tzinfo else created.replace(tzinfo=UTC))
    return min(times, default=None)


def _maybe_sent(claimed: str | None, earlier: MessageRecord | None) -> bool:
    """Whether an earlier attempt may have handed the message over already.

    It died handing it over (the claim found it ``sending``), or an attempt that found it
    so failed afterwards and put it back in the queue, saying so.
    """
    return claimed == "sending" or bool(earlier and earlier.detail.get("possible_duplicate"))


def _recorded(message: MessageRecord) -> c.SendResult:
    """The result of a message the log already settled (never sent again)."""
    return c.SendResult(
        message.id,
        message.channel,
        message.state,
        message.address,
        {**message.detail, "recorded": True},
        message.reason,
    )
