"""People, as the client changes them: identify, track, merge, devices, erasure.

Every change here can also start journeys (:mod:`journeys.client.entry`): an event starts
the journeys whose ``trigger`` is that event, and a change that puts a person into a
segment starts the journeys triggered by entering it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.service import RPCError

from definitions.errors import InvalidRequestError, UnknownRunError
from definitions.values import JSONValue, check_json
from journeys.client.checks import check_event, check_id, check_text, check_time
from journeys.client.context import ClientContext
from journeys.client.entry import Entry
from journeys.client.ingest import Ingest, Tracked
from journeys.client.runs import Runs
from journeys.client.segments import Segments
from journeys.models import RunHandle, TrackResult
from journeys.recipients import check_data
from journeys.store import PersonPage

__all__ = ["People", "Person", "TrackResult"]

log = logging.getLogger("journeys.people")


@dataclass(frozen=True)
class Person:
    """A person as the store knows them."""

    id: str
    attributes: dict[str, JSONValue]
    created_at: datetime | None
    devices: list[dict[str, JSONValue]]
    segments: list[str]


class People:
    """People and their events and devices.

    Args:
        context: the client's connections and settings.
        runs: where a person's runs are sent events and cancelled.
        entry: where the journeys an event or a segment starts are started.
        segments: where a person's memberships are read.

    """

    def __init__(
        self, context: ClientContext, runs: Runs, entry: Entry, segments: Segments
    ) -> None:
        self.context = context
        self.runs = runs
        self.entry = entry
        self.segments = segments
        self.ingest = Ingest(context, runs, entry)

    async def identify(
        self,
        person_id: str,
        attributes: Mapping[str, object] | None = None,
        *,
        anonymous_id: str | None = None,
    ) -> list[RunHandle]:
        """Create or update a person: attributes merge, ``created_at`` is kept.

        The merge is shallow (a key given replaces that key) and atomic: concurrent
        identifies of the same person all hold. A ``devices`` attribute (``[{token,
        platform}]`` or tokens) registers those devices, as :meth:`add_device` does. With
        ``anonymous_id``, the events that anonymous visitor did become this person's.
        Returns the journeys this started (by putting the person into a segment).
        """
        check_id(person_id)
        values = check_data(attributes, "attributes")
        if anonymous_id is not None:
            check_id(anonymous_id, "anonymous_id")
        await self.context.store.profiles.identify(person_id, values, anonymous_id=anonymous_id)
        return await self.entry.enter_segments(person_id)

    async def track(
        self,
        person_id: str,
        event: str,
        data: Mapping[str, object] | None = None,
        *,
        timestamp: datetime | None = None,
        event_id: str | None = None,
    ) -> TrackResult:
        """Record an event for a person; signal and start the journeys it concerns.

        The event goes to the person's running journeys, and starts the journeys it
        triggers. A person who has no profile yet gets an empty one. An ``event_id`` seen before
        makes this a no-op (safe retries).
        """
        check_id(person_id)
        payload, timestamp = _checked_event(event, data, timestamp, event_id)
        return await self.ingest.track(Tracked(person_id, event, payload, timestamp, event_id))

    async def track_anonymous(
        self,
        anonymous_id: str | None,
        event: str,
        data: Mapping[str, object] | None = None,
        *,
        timestamp: datetime | None = None,
        event_id: str | None = None,
    ) -> TrackResult:
        """Record an event of an anonymous visitor; it joins their person on identify."""
        check_id(anonymous_id, "anonymous_id")
        payload, timestamp = _checked_event(event, data, timestamp, event_id)
        recorded = await self.context.store.events.record(
            None,
            event,
            payload,
            timestamp,
            anonymous_id=anonymous_id,
            event_id=event_id,
        )
        return TrackResult(recorded)

    async def person(self, person_id: str) -> Person:
        """A person with their attributes, devices and segment memberships.

        Raises:
            UnknownRunError: no such person.

        """
        check_id(person_id)
        profile = await self.context.store.profiles.get(person_id)
        if profile is None:
            raise UnknownRunError(f"unknown person {person_id!r}")
        listed = profile.pop("devices", None)
        # The store lists a person's devices as objects, and only when there is one.
        devices = [d for d in listed if isinstance(d, dict)] if isinstance(listed, list) else []
        profile.pop("id", None)
        return Person(
            person_id,
            profile,
            await self.context.store.profiles.created_at(person_id),
            devices,
            await self.segments.memberships(person_id),
        )

    async def people(
        self,
        *,
        email: str | None = None,
        attribute: tuple[str, Any] | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> PersonPage:
        """People in id order, a page at a time, filtered by email or an attribute value."""
        if email is not None:
            check_text(email, "email", 320)
        if attribute is not None:
            if not isinstance(attribute, tuple) or len(attribute) != 2:
                raise InvalidRequestError(["attribute: expected (name, value)"])
            check_text(attribute[0], "attribute", 255)
            if '"' in attribute[0]:
                raise InvalidRequestError(["attribute: expected a name without '\"'"])
            problems = check_json(attribute[1], f"attribute {attribute[0]}")
            if problems:
                raise InvalidRequestError(problems)
        if after is not None:
            check_id(after, "after")
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise InvalidRequestError([f"limit: expected a whole number, found {limit!r}"])
        return await self.context.store.profiles.page(
            email=email, attribute=attribute, after=after, limit=max(1, min(limit, 1000))
        )

    async def resolve_person(
        self, *, id: str | None = None, email: str | None = None, create: bool = False
    ) -> str:
        """A person's id from an id or an email (Customer.io's identifiers).

        Raises:
            UnknownRunError: the email belongs to nobody (and ``create`` is False).

        """
        if id:
            return check_id(id)
        if not email:
            raise InvalidRequestError(["identifiers: expected 'id' or 'email', found neither"])
        found = await self.context.store.profiles.find_by_email(email)
        if found is None:
            if not create:
                raise UnknownRunError(f"no person with email {email!r}")
            await self.context.store.profiles.upsert([(email, {"email": email})])
            return email
        return found

    async def merge_people(self, primary: str, secondary: str) -> None:
        """Fold ``secondary`` into ``primary`` (attributes, events, messages, devices…).

        ``secondary``'s running journeys are cancelled: they ran for a person who no longer
        exists.
        """
        check_id(primary, "primary")
        check_id(secondary, "secondary")
        if primary == secondary:
            return
        for run in await self.context.store.runs.open_of(secondary):
            await self.runs.cancel(run.run_id)
        await self.context.store.profiles.merge(primary, secondary)
        await self.entry.enter_segments(primary)

    async def delete_person(self, person_id: str) -> bool:
        """Delete a person and everything about them (GDPR erasure).

        Their running journeys are cancelled first, and every run of theirs is deleted from
        Temporal too, so no history keeps their data (a cohort's history, shared with other
        recipients, keeps their id until its retention ends). Returns False if they did not
        exist.
        """
        check_id(person_id)
        runs = await self.context.store.runs.of_person(person_id)
        for run in runs:
            if not run.closed:
                await self.runs.cancel(run.run_id)
        for run in runs:
            if run.member:
                # A cohort's history is shared with its other recipients: it is not
                # deleted; it keeps this id until the namespace's retention removes it.
                continue
            try:
                await self.context.temporal.workflow_service.delete_workflow_execution(
                    DeleteWorkflowExecutionRequest(
                        namespace=self.context.temporal.namespace,
                        workflow_execution=WorkflowExecution(
                            workflow_id=run.workflow_id, run_id=run.run_id
                        ),
                    )
                )
            except RPCError as exc:
                log.warning("could not delete run %s of %s: %s", run.run_id, person_id, exc)
        return await self.context.store.profiles.delete(person_id)

    async def add_device(
        self,
        person_id: str,
        token: str,
        platform: str,
        *,
        attributes: Mapping[str, object] | None = None,
        last_used: datetime | None = None,
    ) -> None:
        """Register a push token for a person."""
        check_id(person_id)
        check_text(token, "device id", 4096)
        check_text(platform, "platform", 32)
        extra = check_data(attributes, "device")
        used = check_time(last_used, "last_used")
        await self.context.store.profiles.add_device(person_id, token, platform, extra, used)

    async def remove_device(self, person_id: str, token: str) -> None:
        """Forget a push token."""
        check_id(person_id)
        check_text(token, "device id", 4096)
        await self.context.store.profiles.remove_device(person_id, token)


def _checked_event(
    event: str,
    data: Mapping[str, object] | None,
    timestamp: datetime | None,
    event_id: str | None,
) -> tuple[dict[str, JSONValue], datetime | None]:
    """An event's name, data, time and id checked as the API checks them; data and time."""
    check_event(event)
    payload = check_data(data)
    checked = check_time(timestamp)
    if event_id is not None:
        check_id(event_id, "event_id")
    return payload, checked
