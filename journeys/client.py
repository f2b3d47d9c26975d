"""The async client: trigger journeys, read their status, cancel them, track events."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.common import (
    WorkflowIDConflictPolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.rendering import render_variant
from definitions import contract as c
from definitions.compiler import Library
from definitions.diagnostics import Diagnostic
from definitions.errors import (
    ConfigurationError,
    DefinitionError,
    EngineUnavailableError,
    InvalidRequestError,
    UnknownRunError,
)
from definitions.runtime import search_attributes
from definitions.values import check_id, require_id
from journeys.cohorts import STATES, CohortsMixin, run_status
from journeys.config import CohortSettings, Settings, load_settings
from journeys.consent import Preferences, verify_unsubscribe
from journeys.models import RunHandle, RunStatus, TriggerHandle, TriggerStatus
from journeys.people import PeopleMixin
from journeys.recipients import (
    check_data,
    check_input_size,
    parse_per_recipient_data,
    parse_recipients,
)
from journeys.store import MessageRecord, RunRecord, Store, TriggerRecord
from journeys.temporal import connect

__all__ = ["JourneysClient"]

_STARTS_AT_ONCE = 32
_QUERY_TIMEOUT = timedelta(seconds=10)
_LOOKUP_LIMIT = 1000
_RETRYING_SHOWN = 50
"""Messages of a run looked at for those waiting for a retry (a run sends a few at a time)."""
"""The longest run, trigger or message id looked up (message ids run to about 700)."""


def workflow_id_for(journey: str, recipient_id: str) -> str:
    """The workflow id of a recipient's run of a journey: one active run per pair."""
    return f"{journey}/{recipient_id}"


class JourneysClient(CohortsMixin, PeopleMixin):
    """Trigger, inspect and cancel journey runs; people, events, segments and messages.

    Create one with :meth:`connect` and close it (or use ``async with``).

    Args:
        temporal: a client made by :func:`journeys.temporal.connect`; None for a client
            that only reads and writes the store (preferences, messages, previews).
        store: the engine's store.
        library: the journeys directory.
        task_queue: the task queue workers poll.
        signing_secret: the key of unsubscribe tokens.
        cohorts: when and how triggers run as cohorts.
        batch_sizes: recipients per send activity, by channel.
        retry_windows: seconds transient failures are retried, by channel.

    """

    def __init__(
        self,
        temporal: Client | None,
        store: Store,
        library: Library,
        *,
        task_queue: str,
        signing_secret: str | None = None,
        cohorts: CohortSettings | None = None,
        batch_sizes: dict[str, int] | None = None,
        retry_windows: dict[str, float] | None = None,
    ) -> None:
        self._temporal = temporal
        self.store = store
        self.library = library
        self.task_queue = task_queue
        self.signing_secret = signing_secret
        self.cohort_settings = cohorts or CohortSettings()
        self.batch_sizes = dict(batch_sizes or {})
        self.retry_windows = dict(retry_windows or {})

    @classmethod
    async def connect(
        cls,
        settings: Settings | None = None,
        *,
        directory: str | Path | None = None,
        task_queue: str | None = None,
        temporal: bool = True,
    ) -> JourneysClient:
        """Connect to Temporal and open the store, as the configuration says.

        Args:
            settings: the configuration; by default ``journeys.toml`` and the environment.
            directory: the journeys directory, instead of the configured one.
            task_queue: the task queue, instead of the configured one.
            temporal: False to open only the store (no runs: preferences, messages, previews).

        """
        settings = settings or load_settings()
        engine = await connect(settings.temporal) if temporal else None
        store = await Store.open(settings.store.url)
        return cls(
            engine,
            store,
            Library(directory or settings.directory),
            task_queue=task_queue or settings.temporal.task_queue,
            signing_secret=settings.preferences.signing_secret,
            cohorts=settings.cohorts,
            batch_sizes=settings.batch_sizes(),
            retry_windows=settings.retry_windows(defaults=True),
        )

    @property
    def temporal(self) -> Client:
        """The Temporal client.

        Raises:
            EngineUnavailableError: this client was opened without Temporal.

        """
        if self._temporal is None:
            raise EngineUnavailableError("this client was opened without Temporal")
        return self._temporal

    async def close(self) -> None:
        """Close the store's connections."""
        await self.store.close()

    async def __aenter__(self) -> JourneysClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- trigger ---------------------------------------------------------------------------

    async def trigger(
        self,
        journey: str,
        recipients: Sequence[str | Mapping[str, Any]],
        *,
        data: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        per_recipient_data: Mapping[str, Mapping[str, Any]] | None = None,
        cohorts: bool | None = None,
    ) -> TriggerHandle:
        """Start a journey for recipients.

        Up to ``[cohorts] threshold`` recipients (50 by default) get a run each, and the
        handle lists them. More run as cohorts: the recipients are stored, the trigger's
        workflow starts them in cohort workflows of ``[cohorts] size`` a page at a time,
        and this returns at once with the trigger id (``status(trigger_id)`` shows the
        progress). Either way a recipient moves through the journey exactly as alone.

        Everything is checked before anything starts. A recipient already in this journey
        keeps their run (its handle says ``started=False``; a cohort counts them as
        ``skipped``). With an ``idempotency_key``, calling again with the same key starts
        nothing new and returns the same trigger.

        Args:
            journey: the journey's name (its YAML file name).
            recipients: ids, or mappings with an ``id`` and profile fields to upsert.
            data: values the journey's templates see as ``trigger.*``.
            idempotency_key: makes the whole call safe to retry.
            per_recipient_data: values for one recipient each, over ``data``.
            cohorts: True to run as cohorts, False for a run each, whatever the number.

        Raises:
            UnknownJourneyError: no such journey (the error lists those that exist).
            DefinitionError: the journey's files are wrong.
            InvalidRecipientError: a recipient or a recipient's data is unusable.
            InvalidRequestError: the data, the idempotency key or ``cohorts`` is unusable,
                or the runs' inputs would be too large for Temporal.

        """
        if not isinstance(journey, str):
            raise InvalidRequestError(
                [f"journey: expected a journey's name, found {type(journey).__name__}"]
            )
        plan = self.library.compile(journey)
        people = parse_recipients(recipients)
        payload = check_data(data)
        personal = parse_per_recipient_data(per_recipient_data, (rid for rid, _ in people))
        if idempotency_key is not None:
            require_id(idempotency_key, "idempotency_key")
        if cohorts is not None and not isinstance(cohorts, bool):
            raise InvalidRequestError([f"cohorts: expected True, False or None, found {cohorts!r}"])
        as_cohorts = (
            cohorts if cohorts is not None else len(people) > self.cohort_settings.threshold
        )
        check_input_size(
            plan, payload, people, personal, self.cohort_settings.size if as_cohorts else None
        )
        # Everything is checked: from here on the trigger is written and started.
        record = TriggerRecord(
            id=f"trg_{secrets.token_hex(8)}",
            journey=journey,
            data=payload,
            created_at=datetime.now(UTC),
            idempotency_key=idempotency_key,
        )
        record = await self.store.runs.save_trigger(record)
        await self.store.profiles.upsert(people)
        if as_cohorts:
            await self._start_cohorts(
                plan,
                record,
                payload,
                [(rid, personal.get(rid)) for rid, _ in people],
            )
            return TriggerHandle(record.id, journey, [], recipients=len(people), cohorts=True)
        ours = {r.recipient_id: r for r in await self.store.runs.of_trigger(record.id)}
        gate = asyncio.Semaphore(_STARTS_AT_ONCE)

        async def start(recipient_id: str) -> RunHandle:
            if recipient_id in ours:
                run = ours[recipient_id]
                return RunHandle(run.run_id, run.workflow_id, journey, recipient_id)
            async with gate:
                return await self._start(
                    plan, record, recipient_id, {**payload, **personal.get(recipient_id, {})}
                )

        runs = await asyncio.gather(*(start(rid) for rid, _ in people))
        return TriggerHandle(record.id, journey, list(runs), recipients=len(people))

    async def _start(
        self,
        plan: Any,
        trigger: TriggerRecord,
        recipient_id: str,
        data: dict[str, Any],
        event: dict[str, Any] | None = None,
    ) -> RunHandle:
        workflow_id = workflow_id_for(plan.journey, recipient_id)
        member = await self.store.runs.open_in(plan.journey, recipient_id)
        if member is not None and member[0] != workflow_id:  # in a cohort of this journey
            return RunHandle(member[1], member[0], plan.journey, recipient_id, started=False)
        attributes = search_attributes(plan.journey, recipient_id, trigger.id)
        try:
            handle = await self.temporal.start_workflow(
                c.WORKFLOW,
                c.JourneyInput(
                    plan,
                    recipient_id,
                    trigger.id,
                    data,
                    dict(event or {}),
                    retry_windows=dict(self.retry_windows),
                ),
                id=workflow_id,
                task_queue=self.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                search_attributes=attributes,
                static_summary=f"{plan.journey} for {recipient_id}",
                static_details=plan.description or None,
            )
        except WorkflowAlreadyStartedError:
            existing = await self.temporal.get_workflow_handle(workflow_id).describe()
            return RunHandle(
                existing.run_id, workflow_id, plan.journey, recipient_id, started=False
            )
        run_id = handle.result_run_id or handle.run_id or ""
        await self.store.runs.add(
            RunRecord(
                workflow_id, run_id, plan.journey, recipient_id, trigger.id, datetime.now(UTC)
            )
        )
        return RunHandle(run_id, workflow_id, plan.journey, recipient_id)

    # -- status and cancel -----------------------------------------------------------------

    async def status(
        self, run_or_trigger_id: str, *, recipient: str | None = None
    ) -> RunStatus | TriggerStatus:
        """The status of a run (by run id or workflow id) or of a whole trigger.

        A cohort trigger's status counts its recipients by state and per step; with
        ``recipient``, the status of that one recipient of the trigger instead.

        Raises:
            UnknownRunError: no run or trigger has that id, or the recipient is not in it.

        """
        require_id(run_or_trigger_id, "id", limit=_LOOKUP_LIMIT)
        if recipient is not None:
            require_id(recipient, "recipient")
        trigger = await self.store.runs.get_trigger(run_or_trigger_id)
        if trigger is not None and recipient is not None:
            found = await self.store.runs.of_member(trigger.id, recipient)
            if not found and await self.store.members.contains(trigger.id, recipient):
                # Named by the trigger, not yet put in a cohort by its workflow.
                return RunStatus(
                    "", "", trigger.journey, recipient, "pending", trigger_id=trigger.id
                )
            if not found:
                raise UnknownRunError(f"{recipient!r} has no run in trigger {trigger.id}")
            return await self._run_status(await self._find_run(found[-1][1]))
        if trigger is not None:
            size = await self.store.members.count(trigger.id)
            if size is not None:
                return await self._cohort_trigger_status(trigger, size)
            runs = await self.store.runs.of_trigger(trigger.id)
            statuses = await asyncio.gather(*(self._run_status(r) for r in runs))
            return TriggerStatus(trigger.id, trigger.journey, list(statuses))
        return await self._run_status(await self._find_run(run_or_trigger_id))

    async def cancel(
        self, run_or_trigger_id: str, *, wait: timedelta = timedelta(seconds=90)
    ) -> RunStatus | TriggerStatus:
        """Cancel a run, or every running run of a trigger, and wait until they stop.

        A run stops at once, even in the middle of a wait or while a message waits for a
        retry (the message is withdrawn); a message being handed to a provider at that
        instant finishes, and nothing is sent after cancel() returns. Cancelling a run
        that has ended changes nothing.

        Args:
            run_or_trigger_id: a run id, a workflow id or a trigger id.
            wait: how long to wait for the runs to stop — longer than a provider's answer
                to a message handed over at that instant can take.

        Raises:
            UnknownRunError: no run or trigger has that id.

        """
        require_id(run_or_trigger_id, "id", limit=_LOOKUP_LIMIT)
        trigger = await self.store.runs.get_trigger(run_or_trigger_id)
        if trigger is not None and await self.store.members.count(trigger.id) is not None:
            await self._cancel_cohorts(trigger, wait)
            return await self.status(run_or_trigger_id)
        runs = (
            await self.store.runs.of_trigger(trigger.id)
            if trigger
            else [await self._find_run(run_or_trigger_id)]
        )
        await asyncio.gather(*(self._cancel_run(r, wait) for r in runs))
        return await self.status(run_or_trigger_id)

    async def _cancel_run(self, run: RunRecord, wait: timedelta) -> None:
        if run.member:
            await self._cancel_member(run)
            return
        handle = self.temporal.get_workflow_handle(run.workflow_id, run_id=run.run_id)
        description = await handle.describe()
        if description.status != WorkflowExecutionStatus.RUNNING:
            return
        await handle.cancel()
        with contextlib.suppress(WorkflowFailureError, TimeoutError):
            await asyncio.wait_for(handle.result(), wait.total_seconds())
        await self.store.runs.mark_closed(run.workflow_id, run.run_id)

    async def _find_run(self, run_id: str) -> RunRecord:
        found = await self.store.runs.get(run_id) or next(
            iter(await self.store.runs.find(run_id)), None
        )
        if found is None:
            raise UnknownRunError(
                f"unknown run or trigger {run_id!r}: expected a run id, a "
                "workflow id (<journey>/<recipient>) or a trigger id (trg_…)"
            )
        return found

    async def _run_status(self, run: RunRecord) -> RunStatus:
        status = await (self._member_status(run) if run.member else self._own_status(run))
        if status.state != "running":
            return status
        logged = await self.store.messages.find(
            workflow_id=run.workflow_id, run_id=run.run_id, limit=_RETRYING_SHOWN
        )
        retrying = [m for m in logged if m.state == "queued"]
        return dataclasses.replace(status, retrying=retrying) if retrying else status

    async def _own_status(self, run: RunRecord) -> RunStatus:
        handle: WorkflowHandle[Any, c.RunProgress] = self.temporal.get_workflow_handle(
            run.workflow_id, run_id=run.run_id, result_type=c.RunProgress
        )
        description = await handle.describe()
        state = STATES.get(description.status, "running") if description.status else "running"
        progress: c.RunProgress | None = None
        if state == "completed":
            progress = await handle.result()
            state = progress.state
        else:
            try:
                progress = await handle.query(
                    c.PROGRESS_QUERY, result_type=c.RunProgress, rpc_timeout=_QUERY_TIMEOUT
                )
            except (RPCError, WorkflowQueryFailedError):
                progress = None  # no worker to answer: the state is still known
        if state != "running" and not run.closed:
            await self.store.runs.mark_closed(run.workflow_id, run.run_id)
        return run_status(
            run,
            state,
            progress,
            started_at=description.start_time,
            closed_at=description.close_time,
        )

    # -- events ----------------------------------------------------------------------------

    async def signal_runs(self, recipient_id: str, event: str, data: dict[str, Any]) -> int:
        """Send an event to the recipient's running journeys; returns how many it reached."""
        reached = 0
        for run in await self.store.runs.open_of(recipient_id):
            handle = self.temporal.get_workflow_handle(
                run.workflow_id, run_id=None if run.member else run.run_id
            )
            try:
                await handle.signal(c.EVENT_SIGNAL, c.EventSignal(event, data, recipient_id))
                reached += 1
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
                if not run.member:  # a cohort closes its members' runs itself
                    await self.store.runs.mark_closed(run.workflow_id, run.run_id)
        return reached

    # -- messages ----------------------------------------------------------------------------

    async def message_status(self, message_id: str) -> MessageRecord:
        """A message from the log: its channel, address, state, reason and provider id.

        Raises:
            UnknownRunError: no message has that id.

        """
        require_id(message_id, "message id", limit=_LOOKUP_LIMIT)
        found = await self.store.messages.get(message_id)
        if found is None:
            raise UnknownRunError(f"unknown message {message_id!r}")
        return found

    async def messages(
        self, *, recipient: str | None = None, run: str | None = None, limit: int = 100
    ) -> list[MessageRecord]:
        """Messages of a recipient and/or a run (run id or workflow id), newest first."""
        workflow_id = run_id = None
        if recipient is not None:
            require_id(recipient, "recipient")
        if run is not None:
            require_id(run, "run", limit=_LOOKUP_LIMIT)
            found = await self._find_run(run)
            workflow_id, run_id = found.workflow_id, found.run_id
        return await self.store.messages.find(
            recipient_id=recipient, workflow_id=workflow_id, run_id=run_id, limit=limit
        )

    async def preview(
        self,
        template: str,
        channel: str,
        *,
        recipient: str | None = None,
        profile: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Render a template's variant for a channel, for a stored or a sample profile.

        Raises:
            DefinitionError: the template file is wrong or has no variant for the channel.
            UnknownRunError: the recipient has no profile.
            RenderError: the template cannot be rendered for this profile.

        """
        compiled = self.library.template(template)
        if channel not in compiled.variants:
            raise DefinitionError(
                [
                    Diagnostic(
                        str(self.library.directory / "templates" / f"{template}.yaml"),
                        0,
                        0,
                        f"template {template!r} has no {channel} variant: expected one of "
                        f"{', '.join(compiled.variants) or 'none'}",
                    )
                ]
            )
        if recipient is not None:
            stored = await self.store.profiles.get(recipient)
            if stored is None:
                raise UnknownRunError(f"no profile for recipient {recipient!r}")
            person = stored
        else:
            person = {"id": "sample", **dict(profile or {})}
        names = {
            "customer": person,
            "trigger": dict(data or {}),
            "event": {},
            "journey": {
                "name": "preview",
                "step": "preview",
                "run_id": "",
                "trigger_id": "",
                "message_id": "preview",
                "unsubscribe_url": "https://example.invalid/u",
            },
        }
        return render_variant(compiled, channel, names)

    # -- preferences -------------------------------------------------------------------------

    async def preferences(self, recipient: str) -> Preferences:
        """A recipient's preferences."""
        return await self.store.consent.preferences(recipient)

    async def update_preferences(
        self,
        recipient: str,
        *,
        unsubscribed: bool | None = None,
        channels: Mapping[str, bool] | None = None,
        topics: Mapping[str, bool] | None = None,
    ) -> Preferences:
        """Change a recipient's preferences; what is not given is kept.

        Args:
            recipient: the recipient's id.
            unsubscribed: unsubscribe from (True) or resubscribe to (False) marketing.
            channels: channel → opted out (True) or back in (False).
            topics: topic → subscribed (True) or not (False).

        Raises:
            InvalidRequestError: naming each value that is not of the right kind.

        """
        require_id(recipient, "recipient")
        problems = []
        if unsubscribed is not None and not isinstance(unsubscribed, bool):
            problems.append(f"unsubscribed: expected true or false, found {unsubscribed!r}")
        for name, given in (("channels", channels), ("topics", topics)):
            if given is None:
                continue
            if not isinstance(given, Mapping):
                problems.append(f"{name}: expected a mapping, found {type(given).__name__}")
                continue
            for key, flag in given.items():
                problems += check_id(key, f"{name} key")
                if not isinstance(flag, bool):
                    problems.append(f"{name}.{key}: expected true or false, found {flag!r}")
        if problems:
            raise InvalidRequestError(problems)
        return await self.store.consent.update_preferences(
            recipient,
            unsubscribed=unsubscribed,
            channels=dict(channels or {}),
            topics=dict(topics or {}),
        )

    async def unsubscribe(self, token: str) -> Preferences:
        """Apply a signed unsubscribe token (from a link or a List-Unsubscribe POST).

        Raises:
            InvalidTokenError: the token was not signed with this installation's secret.
            ConfigurationError: no signing secret is configured.

        """
        if not self.signing_secret:
            raise ConfigurationError("unsubscribe tokens need JOURNEYS_PREFERENCES_SIGNING_SECRET")
        recipient, topic = verify_unsubscribe(self.signing_secret, token)
        if topic:
            return await self.update_preferences(recipient, topics={topic: False})
        return await self.update_preferences(recipient, unsubscribed=True)

    async def suppress(self, value: str, *, reason: str, kind: str = "person") -> None:
        """Stop every message to a person (``kind="person"``) or an address (``"address"``).

        Raises:
            InvalidRequestError: the kind, the value or the reason is not usable.

        """
        value = _suppressed(value, kind)
        require_id(reason, "reason")
        await self.store.consent.suppress(kind, value, reason)

    async def unsuppress(self, value: str, *, kind: str = "person") -> None:
        """Lift a suppression."""
        await self.store.consent.unsuppress(kind, _suppressed(value, kind))


def _suppressed(value: Any, kind: Any) -> str:
    """The value a suppression is kept under (addresses lower-cased), checked."""
    if kind not in ("person", "address"):
        raise InvalidRequestError([f"kind: expected 'person' or 'address', found {kind!r}"])
    require_id(value, kind, limit=2048)
    return str(value).lower() if kind == "address" else str(value)
