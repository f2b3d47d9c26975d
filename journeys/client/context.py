"""What every area of the client works with: the engine, the store, the library, the settings.

One :class:`ClientContext` is made by :class:`~journeys.client.JourneysClient` and handed
to each area; a setting changed on the client (``client.batch_sizes = …``) is seen by
every area at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio.client import Client

from definitions.compiler import Library
from definitions.errors import EngineUnavailableError
from journeys.config import CohortSettings
from journeys.store import Store

__all__ = ["ClientContext"]


@dataclass
class ClientContext:
    """The connections and settings shared by the areas of one client."""

    connection: Client | None
    """The Temporal client; None for a client that only reads and writes the store."""
    store: Store
    """The engine's store."""
    library: Library
    """The journeys directory."""
    task_queue: str
    """The task queue workers poll."""
    signing_secret: str | None = None
    """The key of unsubscribe tokens."""
    cohorts: CohortSettings = field(default_factory=CohortSettings)
    """When and how triggers run as cohorts."""
    batch_sizes: dict[str, int] = field(default_factory=dict)
    """Recipients per send activity, by channel."""
    retry_windows: dict[str, float] = field(default_factory=dict)
    """Seconds transient failures are retried, by channel."""

    @property
    def temporal(self) -> Client:
        """The Temporal client.

        Raises:
            EngineUnavailableError: this client was opened without Temporal.

        """
        if self.connection is None:
            raise EngineUnavailableError("this client was opened without Temporal")
        return self.connection
