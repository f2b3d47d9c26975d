"""The activities a journey workflow calls: evaluate, send and window."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.channels import Channel, Outgoing
from activities.conditions import evaluate
from activities.rendering import default_webhook_body, render_variant, variables
from definitions import contract as c
from definitions.errors import PermanentDeliveryError, RetryableDeliveryError
from definitions.steps.window import seconds_until_open
from definitions.templates import render_string
from journeys.store import MessageRecord, Store

__all__ = ["JourneyActivities", "message_id_for"]

log = logging.getLogger(__name__)


def message_id_for(run: c.RunInfo, step: str, channel: str) -> str:
    """The deterministic id of a step's message on a channel in a run."""
    return f"{run.workflow_id}/{run.run_id}/{step}/{channel}"


class JourneyActivities:
    """The activities, sharing one store and one set of channels.

    Args:
        store: the store profiles, events and messages are read from and written to.
        channels: the delivery channels by name.

    """

    def __init__(self, store: Store, channels: dict[str, Channel]) -> None:
        self.store = store
        self.channels = channels

    def all(self) -> list[Any]:
        """The activity callables to register on a worker."""
        return [self.evaluate_condition, self.send_message, self.window_delay]

    @activity.defn(name=c.EVALUATE)
    async def evaluate_condition(self, request: c.EvaluateInput) -> bool:
        """Whether a condition holds for the recipient now."""
        return await evaluate(request.condition, request.recipient_id, self.store)

    @activity.defn(name=c.WINDOW)
    async def window_delay(self, request: c.WindowInput) -> float:
        """Seconds from the workflow's ``now`` until the window opens for the recipient."""
        profile = await self.store.get_profile(request.recipient_id) or {}
        return seconds_until_open(request.step, request.now, profile.get("timezone"))

    @activity.defn(name=c.SEND)
    async def send_message(self, request: c.SendInput) -> c.SendResult:
        """Render and deliver one message, recording it before and after the provider call.

        A message already recorded as sent or skipped is not sent again: the recorded
        outcome is returned, so activity retries and replays never send twice.
        """
        step = request.step
        message_id = message_id_for(request.run, step.id, step.channel)
        earlier = await self.store.get_message(message_id)
        if earlier is not None and earlier.state in ("sent", "skipped"):
            return c.SendResult(
                message_id,
                step.channel,
                earlier.state,
                earlier.address,
                {**earlier.detail, "recorded": True},
            )
        recipient = request.run.recipient_id
        profile = await self.store.get_profile(recipient) or {"id": recipient}
        names = variables(request, profile, message_id)
        channel = self.channels[step.channel]

        def record(state: str, address: str | None, **detail: Any) -> MessageRecord:
            return MessageRecord(
                message_id,
                request.run.workflow_id,
                request.run.run_id,
                step.id,
                recipient,
                step.channel,
                state,
                address,
                detail,
            )

        try:
            address = channel.address(
                profile, step, lambda text: render_string("liquid", text, names)
            )
            if address is None:
                await self.store.save_message(record("skipped", None, reason="no address"))
                return c.SendResult(
                    message_id, step.channel, "skipped", None, {"reason": "no address"}
                )
            if request.template is not None:
                content = render_variant(request.template, step.channel, names)
            else:
                content = {"body": default_webhook_body(names)}
        except Exception as exc:
            await self.store.save_message(record("failed", None, error=f"render: {exc}"))
            raise ApplicationError(
                f"could not render the message: {exc}",
                type="PermanentDeliveryError",
                non_retryable=True,
            ) from exc

        await self.store.save_message(record("queued", address))
        try:
            delivery = await channel.deliver(
                Outgoing(message_id, address, content, dict(step.headers))
            )
        except PermanentDeliveryError as exc:
            await self.store.save_message(record("failed", address, error=str(exc)))
            raise ApplicationError(
                str(exc), type="PermanentDeliveryError", non_retryable=True
            ) from exc
        except RetryableDeliveryError as exc:
            await self.store.save_message(
                record("queued", address, last_error=str(exc), attempt=activity.info().attempt)
            )
            raise ApplicationError(str(exc), type="RetryableDeliveryError") from exc
        detail = {**delivery.detail, "sent_at": datetime.now(UTC).isoformat()}
        if delivery.provider_id:
            detail["provider_id"] = delivery.provider_id
        await self.store.save_message(record("sent", address, **detail))
        return c.SendResult(message_id, step.channel, "sent", address, detail)
