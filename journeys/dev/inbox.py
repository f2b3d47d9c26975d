"""The developer inbox: every message ``journeys dev`` caught, kept in a SQLite file.

The catchers add to it as messages arrive; the inbox page and ``journeys inbox`` (in another
terminal, or after a restart) read it. Each message keeps where it came from — journey, step,
recipient and the engine's message id — and everything the recipient would get.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["CaughtMessage", "Inbox", "Origin"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS caught (
    number INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    address TEXT NOT NULL,
    summary TEXT NOT NULL,
    caught_at TEXT NOT NULL,
    message_id TEXT,
    journey TEXT,
    step TEXT,
    recipient TEXT,
    content TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS caught_message_id ON caught (message_id);
"""


@dataclass(frozen=True)
class Origin:
    """Which run and step a message came from (from the store's message log)."""

    journey: str | None = None
    step: str | None = None
    recipient: str | None = None


@dataclass(frozen=True)
class CaughtMessage:
    """One message a catcher received."""

    number: int
    """Its place in the inbox: 1 for the first message ever caught."""
    channel: str
    """``email``, ``sms``, ``push`` or ``webhook``."""
    address: str
    """Where it was going: an email address, a phone number, a device token or a URL."""
    summary: str
    """One line: the subject, the text, the push title or the URL."""
    caught_at: datetime
    message_id: str | None
    """The engine's id of the message (as in ``journeys message ID``), when it carried one."""
    origin: Origin = field(default_factory=Origin)
    content: dict[str, Any] = field(default_factory=dict)
    """Everything received, by channel: email ``from``, ``to``, ``subject``, ``text``,
    ``html``, ``headers``; sms ``from``, ``to``, ``body``; push ``token``, ``title``,
    ``body``, ``data``; webhook ``url``, ``headers``, ``body``."""

    def to_json(self) -> dict[str, Any]:
        """As a JSON object (``journeys inbox --json``)."""
        data = asdict(self)
        data["caught_at"] = self.caught_at.isoformat()
        data.update(data.pop("origin"))
        return data


class Inbox:
    """The caught messages in a SQLite file, safe to use from several threads and processes.

    Args:
        path: the file (created, with its folder, when missing).

    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @classmethod
    def existing(cls, path: str | Path) -> Inbox | None:
        """The inbox in ``path``, or None when ``journeys dev`` never made one there."""
        return cls(path) if Path(path).is_file() else None

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=10)) as db, db:
            yield db

    def add(
        self,
        channel: str,
        address: str,
        summary: str,
        content: dict[str, Any],
        *,
        message_id: str | None = None,
        origin: Origin | None = None,
    ) -> CaughtMessage:
        """Keep a message; returns it with its number."""
        origin = origin or Origin()
        now = datetime.now(UTC)
        with self._lock, self._connect() as db:
            cursor = db.execute(
                "INSERT INTO caught (channel, address, summary, caught_at, message_id, journey,"
                " step, recipient, content) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    channel,
                    address,
                    summary,
                    now.isoformat(),
                    message_id,
                    origin.journey,
                    origin.step,
                    origin.recipient,
                    json.dumps(content),
                ),
            )
            number = int(cursor.lastrowid or 0)
        return CaughtMessage(number, channel, address, summary, now, message_id, origin, content)

    def messages(self, *, limit: int = 200) -> list[CaughtMessage]:
        """The newest ``limit`` messages, newest first."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT * FROM caught ORDER BY number DESC LIMIT ?", (limit,)
            ).fetchall()
        return [_message(row) for row in rows]

    def get(self, key: str | int) -> CaughtMessage | None:
        """A message by its number or by the engine's message id (the newest such)."""
        with self._connect() as db:
            if isinstance(key, int) or key.isdigit():
                row = db.execute("SELECT * FROM caught WHERE number = ?", (int(key),)).fetchone()
            else:
                row = db.execute(
                    "SELECT * FROM caught WHERE message_id = ? ORDER BY number DESC LIMIT 1",
                    (key,),
                ).fetchone()
        return _message(row) if row else None

    def count(self) -> int:
        """How many messages the inbox holds."""
        with self._connect() as db:
            return int(db.execute("SELECT count(*) FROM caught").fetchone()[0])

    def clear(self) -> int:
        """Forget every message; returns how many there were."""
        with self._lock, self._connect() as db:
            return db.execute("DELETE FROM caught").rowcount


def _message(row: tuple[Any, ...]) -> CaughtMessage:
    number, channel, address, summary, caught_at, message_id, journey, step, recipient, content = (
        row
    )
    return CaughtMessage(
        number,
        channel,
        address,
        summary,
        datetime.fromisoformat(caught_at),
        message_id,
        Origin(journey, step, recipient),
        json.loads(content),
    )
