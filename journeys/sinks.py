"""Local peers for the demo and the tests: a mail catcher and a webhook sink on loopback."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from definitions.values import JSONValue
from journeys.devserver import free_port

__all__ = ["MailCatcher", "ReceivedRequest", "WebhookSink"]


class _Collect:
    def __init__(self, catcher: MailCatcher) -> None:
        self.catcher = catcher

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content
        # The controller is not made with decode_data=True, so the data comes as bytes.
        assert isinstance(content, bytes)
        with self.catcher._lock:
            self.catcher.received.append(content)
            code = self.catcher.reject_code or (
                self.catcher.refuse_next.pop(0) if self.catcher.refuse_next else None
            )
        if code:
            return f"{code} rejected by the test mail server"
        mail = message_from_bytes(content, policy=policy.default)
        assert isinstance(mail, EmailMessage)
        if self.catcher.on_message is not None:
            await asyncio.to_thread(self.catcher.on_message, mail)
        with self.catcher._lock:
            if self.catcher.keep:
                self.catcher.messages.append(mail)
            self.catcher._changed.notify_all()
        return "250 OK"


class MailCatcher:
    """An SMTP server on loopback that keeps every message it receives.

    Args:
        port: the port to listen on (a free one by default).
        on_message: called with each message before it is accepted (in a thread).
        keep: keep the messages in :attr:`messages` (the dev catcher hands them on instead).

    """

    def __init__(
        self,
        port: int | None = None,
        *,
        on_message: Callable[[EmailMessage], None] | None = None,
        keep: bool = True,
    ) -> None:
        self.port = port or free_port()
        self.on_message = on_message
        self.keep = keep
        self.messages: list[EmailMessage] = []
        self.reject_code: int | None = None
        """Set to a code (e.g. 550) to refuse every message with it."""
        self.refuse_next: list[int] = []
        """Codes to refuse the next messages with, one each (``[451]``: the first attempt
        meets a transient failure, the retry goes through)."""
        self.received: list[bytes] = []
        """Every message's bytes as they arrived, the refused ones included."""
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._controller = Controller(_Collect(self), hostname="127.0.0.1", port=self.port)

    def start(self) -> MailCatcher:
        """Start listening."""
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        self._controller.stop()

    def to(self, address: str) -> list[EmailMessage]:
        """The messages received for an address."""
        with self._lock:
            return [m for m in self.messages if m["To"] == address]

    def wait_for(self, count: int, timeout: float = 30.0) -> list[EmailMessage]:
        """Block until at least ``count`` messages arrived (or the timeout), then return all."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.messages) >= count, timeout)
            return list(self.messages)


@dataclass
class ReceivedRequest:
    """One request the webhook sink received."""

    path: str
    headers: dict[str, str]
    body: JSONValue
    """The body as JSON, or as text when it is not JSON."""
    raw: bytes = field(repr=False, default=b"")


class WebhookSink:
    """An HTTP server on loopback that records every POST and answers a chosen status.

    Args:
        port: the port to listen on (a free one by default).

    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.requests: list[ReceivedRequest] = []
        self.status = 200
        """The status every POST is answered with."""
        self.hold = threading.Event()
        """Cleared: every POST waits until it is set again (to catch a send in flight)."""
        self.hold.set()
        self.arrived = threading.Event()
        """Set when a POST has arrived."""
        self._changed = threading.Condition()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                sink.arrived.set()
                sink.hold.wait(timeout=30)
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                with sink._changed:
                    sink.requests.append(
                        ReceivedRequest(
                            self.path, {k.lower(): v for k, v in self.headers.items()}, body, raw
                        )
                    )
                    sink._changed.notify_all()
                self.send_response(sink.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The sink's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> WebhookSink:
        """Start serving."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[ReceivedRequest]:
        """Block until at least ``count`` requests arrived (or the timeout), then return all."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.requests) >= count, timeout)
            return list(self.requests)
