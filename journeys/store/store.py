"""The store as one object: open it, migrate it, and reach each aggregate by name."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from definitions.errors import EngineUnavailableError
from journeys.store.consent import ConsentStore
from journeys.store.database import Database
from journeys.store.events import EventStore
from journeys.store.members import MemberStore
from journeys.store.messages import MessageStore
from journeys.store.profiles import ProfileStore
from journeys.store.runs import RunStore
from journeys.store.segments import SegmentStore

__all__ = ["Store"]

_MIGRATIONS = Path(__file__).parent / "migrations"


class Store:
    """The engine's store: one database, one object per aggregate over it.

    ``store.profiles`` (people and their devices), ``store.events``, ``store.runs``
    (triggers and runs), ``store.members`` (a cohort trigger's recipients),
    ``store.messages`` (the message log and its send gate), ``store.consent``
    (preferences and suppressions) and ``store.segments`` share :attr:`db`.

    Args:
        url: a SQLAlchemy URL; ``sqlite:///path.db`` and ``postgresql://…`` are turned into
            their async drivers.

    """

    def __init__(self, url: str) -> None:
        self.db = Database(url)
        """The engine, writer and dialect every aggregate uses."""
        self.url = self.db.url
        """The URL with its async driver."""
        self.profiles = ProfileStore(self.db)
        """Profiles and their devices."""
        self.events = EventStore(self.db)
        """Events of people and anonymous visitors."""
        self.runs = RunStore(self.db)
        """Triggers and the runs they started."""
        self.members = MemberStore(self.db)
        """A cohort trigger's stored recipients, claimed into cohorts."""
        self.messages: MessageStore = MessageStore(self.db)
        """The message log and the gate each send goes through."""
        self.consent = ConsentStore(self.db)
        """Preferences and suppressions."""
        self.segments = SegmentStore(self.db)
        """Segment definitions, manual members and conditions over people."""

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Open a store, bringing its schema up to date unless ``migrate`` is False."""
        store = cls(url)
        if migrate:
            await store.migrate()
        return store

    async def close(self) -> None:
        """Release the store's connections."""
        await self.db.dispose()

    async def migrate(self, revision: str = "head") -> None:
        """Apply the Alembic migrations that are not applied yet (up to ``revision``)."""
        for attempt in range(3):
            try:
                async with self.db.writer.begin() as conn:
                    await conn.run_sync(_upgrade, revision)
                return
            except (OperationalError, ProgrammingError, IntegrityError) as exc:
                if attempt == 2:
                    raise EngineUnavailableError(f"cannot migrate the store: {exc}") from exc
                await asyncio.sleep(0.2 * (attempt + 1))  # another process is migrating
            except OSError as exc:
                raise EngineUnavailableError(
                    "cannot reach the store at "
                    f"{make_url(self.url).render_as_string(hide_password=True)}: {exc}"
                ) from exc


_ALEMBIC_LOG = logging.getLogger("alembic")
if _ALEMBIC_LOG.level == logging.NOTSET:
    # The store migrates itself on every start: alembic's INFO lines ("Context impl
    # SQLiteImpl.", "Running upgrade …") would show on every command and worker start
    # under an INFO log. Its warnings still show; an app that sets the level keeps it.
    _ALEMBIC_LOG.setLevel(logging.WARNING)


def _upgrade(connection: Connection, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
