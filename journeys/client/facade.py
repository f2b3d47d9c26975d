"""``JourneysClient``: the areas of the client, composed behind one object.

Each area is a small class of its own module, given what it works with in its
constructor: the shared :class:`~journeys.client.context.ClientContext`, and the other
areas it calls. The client builds them in that order and offers each area's public
methods as its own (``client.trigger`` is :meth:`Runs.trigger
<journeys.client.runs.Runs.trigger>`), so the documented surface is one object:

============================  ======================================================
area                          methods
============================  ======================================================
:mod:`~.runs`                 trigger, status, cancel, signal_runs
:mod:`~.cohort_triggers`      (triggers run as cohorts, reached through runs)
:mod:`~.people`               identify, track, track_anonymous, person, people,
                              resolve_person, merge_people, delete_person,
                              add_device, remove_device
:mod:`~.history`              activity, export_person
:mod:`~.batch`                batch
:mod:`~.segments`             segment_definitions, segment_members, segment_size,
                              memberships, define_segment, add_to_segment,
                              remove_from_segment
:mod:`~.entry`                (journeys that start themselves, reached through people
                              and segments)
:mod:`~.messages`             message_status, messages
:mod:`~.consent`              preferences, update_preferences, unsubscribe, suppress,
                              unsuppress
:mod:`~.templates`            preview
============================  ======================================================
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Concatenate, Generic, ParamSpec, TypeVar, overload

from temporalio.client import Client

from definitions.compiler import Library
from journeys.client.batch import Batch
from journeys.client.cohort_triggers import CohortTriggers
from journeys.client.consent import Consent
from journeys.client.context import ClientContext
from journeys.client.entry import Entry
from journeys.client.history import History
from journeys.client.messages import Messages
from journeys.client.people import People
from journeys.client.runs import Runs
from journeys.client.segments import Segments
from journeys.client.templates import Templates
from journeys.config import CohortSettings, Settings, load_settings
from journeys.store import Store
from journeys.temporal import connect

__all__ = ["JourneysClient"]

_Area = TypeVar("_Area")
_P = ParamSpec("_P")
_R = TypeVar("_R")


class _Of(Generic[_Area, _P, _R]):
    """A method of one area, offered by the client as its own (its signature and docstring).

    Args:
        area: the client's attribute holding the area.
        method: the area's method.

    """

    def __init__(self, area: str, method: Callable[Concatenate[_Area, _P], _R]) -> None:
        self.area = area
        self.method = method
        self.__doc__ = method.__doc__
        self.__wrapped__ = method

    @overload
    def __get__(
        self, client: None, owner: type[object]
    ) -> Callable[Concatenate[_Area, _P], _R]: ...

    @overload
    def __get__(self, client: object, owner: type[object]) -> Callable[_P, _R]: ...

    def __get__(self, client: object, owner: type[object]) -> Callable[..., _R]:
        if client is None:
            return self.method
        bound: Callable[_P, _R] = getattr(getattr(client, self.area), self.method.__name__)
        return bound


class JourneysClient:
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
        self.context = ClientContext(
            temporal,
            store,
            library,
            task_queue,
            signing_secret,
            cohorts or CohortSettings(),
            dict(batch_sizes or {}),
            dict(retry_windows or {}),
        )
        """The connections and settings every area shares."""
        context = self.context
        self._runs = Runs(context, CohortTriggers(context))
        entry = Entry(context, self._runs)
        self._segments = Segments(context, entry)
        self._people = People(context, self._runs, entry, self._segments)
        self._history = History(context, self._people)
        self._batch = Batch(context, self._people)
        self._messages = Messages(context, self._runs)
        self._consent = Consent(context)
        self._templates = Templates(context)

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

    async def close(self) -> None:
        """Close the store's connections."""
        await self.store.close()

    async def __aenter__(self) -> JourneysClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- what the areas share --------------------------------------------------------------

    @property
    def temporal(self) -> Client:
        """The Temporal client.

        Raises:
            EngineUnavailableError: this client was opened without Temporal.

        """
        return self.context.temporal

    @property
    def store(self) -> Store:
        """The engine's store."""
        return self.context.store

    @property
    def library(self) -> Library:
        """The journeys directory."""
        return self.context.library

    @property
    def task_queue(self) -> str:
        """The task queue workers poll."""
        return self.context.task_queue

    @property
    def signing_secret(self) -> str | None:
        """The key of unsubscribe tokens."""
        return self.context.signing_secret

    @signing_secret.setter
    def signing_secret(self, value: str | None) -> None:
        self.context.signing_secret = value

    @property
    def cohort_settings(self) -> CohortSettings:
        """When and how triggers run as cohorts."""
        return self.context.cohorts

    @cohort_settings.setter
    def cohort_settings(self, value: CohortSettings) -> None:
        self.context.cohorts = value

    @property
    def batch_sizes(self) -> dict[str, int]:
        """Recipients per send activity, by channel."""
        return self.context.batch_sizes

    @batch_sizes.setter
    def batch_sizes(self, value: dict[str, int]) -> None:
        self.context.batch_sizes = value

    @property
    def retry_windows(self) -> dict[str, float]:
        """Seconds transient failures are retried, by channel."""
        return self.context.retry_windows

    @retry_windows.setter
    def retry_windows(self, value: dict[str, float]) -> None:
        self.context.retry_windows = value

    # -- the areas' methods ----------------------------------------------------------------

    trigger = _Of("_runs", Runs.trigger)
    status = _Of("_runs", Runs.status)
    cancel = _Of("_runs", Runs.cancel)
    signal_runs = _Of("_runs", Runs.signal_runs)

    identify = _Of("_people", People.identify)
    track = _Of("_people", People.track)
    track_anonymous = _Of("_people", People.track_anonymous)
    person = _Of("_people", People.person)
    people = _Of("_people", People.people)
    resolve_person = _Of("_people", People.resolve_person)
    merge_people = _Of("_people", People.merge_people)
    delete_person = _Of("_people", People.delete_person)
    add_device = _Of("_people", People.add_device)
    remove_device = _Of("_people", People.remove_device)

    activity = _Of("_history", History.activity)
    export_person = _Of("_history", History.export_person)
    batch = _Of("_batch", Batch.batch)

    segment_definitions = _Of("_segments", Segments.segment_definitions)
    segment_members = _Of("_segments", Segments.segment_members)
    segment_size = _Of("_segments", Segments.segment_size)
    memberships = _Of("_segments", Segments.memberships)
    define_segment = _Of("_segments", Segments.define_segment)
    add_to_segment = _Of("_segments", Segments.add_to_segment)
    remove_from_segment = _Of("_segments", Segments.remove_from_segment)

    message_status = _Of("_messages", Messages.message_status)
    messages = _Of("_messages", Messages.messages)

    preferences = _Of("_consent", Consent.preferences)
    update_preferences = _Of("_consent", Consent.update_preferences)
    unsubscribe = _Of("_consent", Consent.unsubscribe)
    suppress = _Of("_consent", Consent.suppress)
    unsuppress = _Of("_consent", Consent.unsuppress)

    preview = _Of("_templates", Templates.preview)
