"""The benchmarks' providers: an SMTP server and a webhook receiver that log every delivery.

Each accepted message is logged with the id the engine gave it (the email's
``X-Journeys-Message-Id``, the webhook's ``webhook-id``) and the moment it was accepted, so a
message accepted twice shows up twice. Both can fail on demand, as real providers do: the
SMTP server stops listening and comes back on the same port; the webhook receiver answers a
chosen status (429 with ``Retry-After``, 5xx) instead of taking the message.

Both are small asyncio protocols (:mod:`benchmarks.wire`) on an event loop in a thread of
their own, so that they are not what bounds a benchmark: the webhook receiver speaks
HTTP/1.1 with keep-alive behind a large listen backlog; the SMTP server reads of each
message only the headers it logs.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Coroutine
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from benchmarks.wire import BACKLOG, HttpProtocol, Request, SmtpProtocol, Tracked

__all__ = ["Accepted", "EventLoopThread", "HookReceiver", "Ledger", "SmtpReceiver"]

_REPLIES_OUT = 0.2
"""Seconds between refusing new messages and stopping the SMTP server."""

T = TypeVar("T")


@dataclass(frozen=True)
class Accepted:
    """One message a provider accepted."""

    kind: str
    """``email`` or ``webhook``."""
    key: str
    """The engine's id of the message: ``X-Journeys-Message-Id`` or ``webhook-id``."""
    recipient: str
    """The email's ``To``; the webhook body's ``customer.id``."""
    at: float
    """When it was accepted (Unix seconds)."""
    path: str = ""
    """The webhook's URL path."""


class Ledger:
    """Every accepted message, in order, and the refusals by kind (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accepted: list[Accepted] = []
        self._counts = {"mail": 0, "hooks": 0}
        self._refused: dict[str, int] = {}

    def accept(self, item: Accepted) -> None:
        """Log an accepted message."""
        with self._lock:
            self._accepted.append(item)
            self._counts["mail" if item.kind == "email" else "hooks"] += 1

    def refuse(self, kind: str) -> None:
        """Count a message a provider refused (a 429 or 5xx answer)."""
        with self._lock:
            self._refused[kind] = self._refused.get(kind, 0) + 1

    def counts(self) -> dict[str, int]:
        """Accepted messages by kind: ``{"mail": n, "hooks": n}``."""
        with self._lock:
            return dict(self._counts)

    def dump(self) -> dict[str, Any]:
        """Everything logged, as JSON-ready data."""
        with self._lock:
            return {
                "accepted": [asdict(a) for a in self._accepted],
                "refused": dict(self._refused),
            }


class EventLoopThread:
    """An asyncio event loop running in a daemon thread, for servers driven from other threads."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the loop and wait for its result (not from the loop's thread)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()


class _Listener:
    """A server on loopback that closes its open connections when it stops."""

    def __init__(self, port: int, loop: EventLoopThread | None) -> None:
        self.port = port
        self._loop = loop
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.Transport] = set()

    def _protocol(self) -> Tracked:
        raise NotImplementedError

    def _listen(self) -> None:
        if self._loop is None:
            self._loop = EventLoopThread()
        loop = self._loop.loop

        async def listen() -> asyncio.Server:
            return await loop.create_server(
                self._protocol, "127.0.0.1", self.port, backlog=BACKLOG, reuse_address=True
            )

        self._server = self._loop.run(listen())

    def _close(self) -> None:
        server, self._server = self._server, None
        if server is None or self._loop is None:
            return

        async def close() -> None:
            server.close()
            for transport in list(self._open):
                transport.abort()  # as a crashed server's connections would end
            self._open.clear()

        self._loop.run(close())


class SmtpReceiver(_Listener):
    """An SMTP server on loopback that can go down and come back on its port.

    Args:
        port: the port to listen on.
        ledger: where accepted messages are logged.
        loop: the event loop thread to serve on (by default one of its own).

    """

    def __init__(self, port: int, ledger: Ledger, loop: EventLoopThread | None = None) -> None:
        super().__init__(port, loop)
        self.ledger = ledger
        self.down_since: float | None = None
        """When it last stopped listening; None while it listens."""
        self._lock = threading.Lock()
        self._budget: int | None = None

    def _protocol(self) -> Tracked:
        return SmtpProtocol(self._open, self._message)

    def _message(self, key: str, to: str) -> bool:
        if not self.take():
            return False
        self.ledger.accept(Accepted("email", key, to, time.time()))
        return True

    def take(self) -> bool:
        """Whether one more message may be accepted (past the budget, it goes down)."""
        with self._lock:
            if self._budget is None:
                return True
            if self._budget > 0:
                self._budget -= 1
                if self._budget == 0:
                    # Not on the loop's own thread: stopping waits for it.
                    threading.Thread(target=self.stop).start()
                return True
            return False

    def start(self) -> None:
        """Listen (again) on the port."""
        # The lock is never held while waiting on the loop: the loop takes it in take().
        if self._server is None:
            self._listen()
            with self._lock:
                self._budget, self.down_since = None, None

    def stop(self, after: int = 0) -> None:
        """Stop listening and drop every open connection, as a crashed server would.

        Messages arriving from now are answered ``421``; a moment later, when the replies
        to those accepted before have gone out, the server stops. (Dropping a connection
        between accepting a message and saying so would make the sender send it again.)

        Args:
            after: accept this many more messages first, then stop.

        """
        with self._lock:
            if after > 0:
                self._budget = after
                return
            self._budget = 0
            listening = self._server is not None
        if listening:
            time.sleep(_REPLIES_OUT)
            self._close()
            self.down_since = time.time()


class HookReceiver(_Listener):
    """A webhook receiver on loopback: 200 and logged, or the refusal chosen with ``refuse``.

    Args:
        port: the port to listen on.
        ledger: where accepted messages are logged.
        loop: the event loop thread to serve on (by default one of its own).

    """

    def __init__(self, port: int, ledger: Ledger, loop: EventLoopThread | None = None) -> None:
        super().__init__(port, loop)
        self.ledger = ledger
        self.refusing_since: float | None = None
        """When it started refusing; None while it accepts."""
        self._lock = threading.Lock()
        self._answer: tuple[int, float | None] | None = None
        self._next: tuple[int, tuple[int, float | None]] | None = None

    def _protocol(self) -> Tracked:
        return HttpProtocol(self._open, self._handle)

    def _handle(self, request: Request) -> tuple[int, dict[str, str]]:
        answer = self._take()
        if answer is not None:
            status, retry_after = answer
            self.ledger.refuse("webhook")
            return status, {} if retry_after is None else {"retry-after": f"{retry_after:g}"}
        try:
            customer = json.loads(request.body)["customer"]["id"]
        except (ValueError, KeyError, TypeError):
            customer = ""
        key = request.headers.get("webhook-id", "")
        self.ledger.accept(Accepted("webhook", key, str(customer), time.time(), request.path))
        return 200, {}

    def _take(self) -> tuple[int, float | None] | None:
        """The refusal for this request, or None to accept it."""
        with self._lock:
            if self._next is not None:
                left, answer = self._next
                if left > 0:
                    self._next = (left - 1, answer)
                    return None
                self._next, self._answer, self.refusing_since = None, answer, time.time()
            return self._answer

    def start(self) -> None:
        """Listen on the port."""
        if self._server is None:
            self._listen()

    def refuse(self, status: int | None, retry_after: float | None = None, after: int = 0) -> None:
        """Answer every POST with ``status`` (and ``Retry-After``); None: accept again.

        Args:
            status: the status to answer with, or None to accept every POST again.
            retry_after: seconds for a ``Retry-After`` header.
            after: accept this many more POSTs first.

        """
        with self._lock:
            if status is None:
                self._next, self._answer, self.refusing_since = None, None, None
            elif after > 0:
                self._next = (after, (status, retry_after))
            else:
                self._next, self._answer = None, (status, retry_after)
                self.refusing_since = self.refusing_since or time.time()

    def stop(self) -> None:
        """Stop serving."""
        self._close()
