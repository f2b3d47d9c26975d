"""The benchmarks' providers: an SMTP server and a webhook receiver that log every delivery.

Each accepted message is logged with the id the engine gave it (the email's
``X-Journeys-Message-Id``, the webhook's ``webhook-id``) and the moment it was accepted, so a
message accepted twice shows up twice. Both can fail on demand, as real providers do: the
SMTP server stops listening and comes back on the same port; the webhook receiver answers a
chosen status (429 with ``Retry-After``, 5xx) instead of taking the message.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass
from email import policy
from email.parser import BytesHeaderParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

__all__ = ["Accepted", "HookReceiver", "Ledger", "SmtpReceiver"]

_REPLIES_OUT = 0.2
"""Seconds between refusing new messages and stopping the SMTP server."""


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
        self._refused: dict[str, int] = {}

    def accept(self, item: Accepted) -> None:
        """Log an accepted message."""
        with self._lock:
            self._accepted.append(item)

    def refuse(self, kind: str) -> None:
        """Count a message a provider refused (a 429 or 5xx answer)."""
        with self._lock:
            self._refused[kind] = self._refused.get(kind, 0) + 1

    def counts(self) -> dict[str, int]:
        """Accepted messages by kind: ``{"mail": n, "hooks": n}``."""
        with self._lock:
            mail = sum(1 for a in self._accepted if a.kind == "email")
            return {"mail": mail, "hooks": len(self._accepted) - mail}

    def dump(self) -> dict[str, Any]:
        """Everything logged, as JSON-ready data."""
        with self._lock:
            return {
                "accepted": [asdict(a) for a in self._accepted],
                "refused": dict(self._refused),
            }


class _Collect:
    def __init__(self, receiver: SmtpReceiver) -> None:
        self.receiver = receiver
        self.parser = BytesHeaderParser(policy=policy.default)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if not self.receiver.take():
            return "421 4.3.2 Service shutting down"
        headers = self.parser.parsebytes(envelope.content)
        # A long id is folded onto a line of its own: unfolded, it keeps a leading space.
        key = str(headers.get("X-Journeys-Message-Id") or headers.get("Message-ID") or "")
        to = str(headers.get("To", ""))
        self.receiver.ledger.accept(Accepted("email", key.strip(), to.strip(), time.time()))
        return "250 OK"


class SmtpReceiver:
    """An SMTP server on loopback (aiosmtpd) that can go down and come back on its port."""

    def __init__(self, port: int, ledger: Ledger) -> None:
        self.port = port
        self.ledger = ledger
        self.down_since: float | None = None
        """When it last stopped listening; None while it listens."""
        self._controller: Controller | None = None
        self._lock = threading.Lock()
        self._budget: int | None = None

    def take(self) -> bool:
        """Whether one more message may be accepted (past the budget, it goes down)."""
        with self._lock:
            if self._budget is None:
                return True
            if self._budget > 0:
                self._budget -= 1
                if self._budget == 0:
                    # Not from the server's own thread: stopping joins it.
                    threading.Thread(target=self.stop).start()
                return True
            return False

    def start(self) -> None:
        """Listen (again) on the port."""
        with self._lock:
            if self._controller is None:
                # A stopped controller's event loop is closed: every start needs a new one.
                controller = Controller(_Collect(self), hostname="127.0.0.1", port=self.port)
                controller.start()
                self._controller, self._budget, self.down_since = controller, None, None

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
            controller, self._controller = self._controller, None
        if controller is not None:
            time.sleep(_REPLIES_OUT)
            controller.stop()
            self.down_since = time.time()


class HookReceiver:
    """A webhook receiver on loopback: 200 and logged, or the refusal chosen with ``refuse``."""

    def __init__(self, port: int, ledger: Ledger) -> None:
        self.port = port
        self.ledger = ledger
        self.refusing_since: float | None = None
        """When it started refusing; None while it accepts."""
        self._lock = threading.Lock()
        self._answer: tuple[int, float | None] | None = None
        self._next: tuple[int, tuple[int, float | None]] | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                if len(raw) < length:
                    # The sender died mid-request (a SIGKILLed worker): a real server
                    # never sees a complete request, so nothing was accepted.
                    self.close_connection = True
                    return
                answer = receiver._take()
                if answer is not None:
                    status, retry_after = answer
                    receiver.ledger.refuse("webhook")
                    self.send_response(status)
                    if retry_after is not None:
                        self.send_header("retry-after", f"{retry_after:g}")
                else:
                    try:
                        customer = json.loads(raw)["customer"]["id"]
                    except (ValueError, KeyError, TypeError):
                        customer = ""
                    key = self.headers.get("webhook-id", "")
                    receiver.ledger.accept(
                        Accepted("webhook", key, str(customer), time.time(), self.path)
                    )
                    self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True

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
        """Serve in a background thread."""
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

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
        self._server.shutdown()
        self._server.server_close()
