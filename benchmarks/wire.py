"""The benchmark providers' protocols: just enough HTTP/1.1 and SMTP, on asyncio.

Each does the least a provider must to take a message: the HTTP side reads a request's head
and its ``Content-Length`` body and keeps the connection for the next one; the SMTP side
answers the commands a client sends (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) and reads
of each message only the headers the ledger logs, its body skipped. A request or a message
that a dying sender cut short is never handed on: it was not received.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus

__all__ = ["BACKLOG", "HttpProtocol", "Request", "SmtpProtocol", "Tracked"]

BACKLOG = 1024
"""The listen backlog: connections a burst may open before the server accepts them."""

_MAX_HEAD = 64 * 1024
_LOGGED = (b"x-journeys-message-id", b"message-id", b"to")


class Tracked(asyncio.Protocol):
    """A connection that is in ``open`` while it is open (so a stopping server can drop it)."""

    def __init__(self, open: set[asyncio.Transport]) -> None:
        self._open = open
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Note the connection."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._open.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection."""
        if self.transport is not None:
            self._open.discard(self.transport)


@dataclass(frozen=True)
class Request:
    """One HTTP request, read in full."""

    method: str
    path: str
    """The request target as sent (path and query)."""
    headers: dict[str, str]
    """Header names in lower case."""
    body: bytes


Handler = Callable[[Request], tuple[int, dict[str, str]]]
"""Answers a request: a status and extra response headers (the body is always empty)."""


class HttpProtocol(Tracked):
    """HTTP/1.1 with keep-alive (and pipelining); bodies by ``Content-Length`` only."""

    def __init__(self, open: set[asyncio.Transport], handle: Handler) -> None:
        super().__init__(open)
        self._handle = handle
        self._buffer = bytearray()
        self._head: tuple[str, str, dict[str, str], int, bool] | None = None

    def data_received(self, data: bytes) -> None:
        """Answer every request the bytes so far complete."""
        self._buffer += data
        out: list[bytes] = []
        try:
            while self.transport is not None and not self.transport.is_closing():
                if self._head is None:
                    end = self._buffer.find(b"\r\n\r\n")
                    if end < 0:
                        if len(self._buffer) > _MAX_HEAD:
                            out.append(_response(431, {}, keep=False))
                            self.transport.close()
                        return
                    head = bytes(self._buffer[:end]).decode("latin-1")
                    del self._buffer[: end + 4]
                    self._head = _parse_head(head)
                    if self._head is None:
                        out.append(_response(400, {}, keep=False))
                        self.transport.close()
                        return
                method, path, headers, length, keep = self._head
                if len(self._buffer) < length:
                    return  # the rest of the body is still to come (or never will)
                body = bytes(self._buffer[:length])
                del self._buffer[:length]
                self._head = None
                if method == "POST":
                    status, extra = self._handle(Request(method, path, headers, body))
                else:
                    status, extra = 405, {"allow": "POST"}
                out.append(_response(status, extra, keep=keep))
                if not keep:
                    self.transport.close()
        finally:
            if out and self.transport is not None:
                self.transport.write(b"".join(out))


def _parse_head(head: str) -> tuple[str, str, dict[str, str], int, bool] | None:
    """Method, target, headers, body length and keep-alive; None for a malformed head."""
    lines = head.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return None
    method, path, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            return None
        headers[name.strip().lower()] = value.strip()
    if "transfer-encoding" in headers:
        return None  # senders here always give a Content-Length
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        return None
    connection = headers.get("connection", "").lower()
    keep = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
    return method, path, headers, length, keep


def _response(status: int, headers: dict[str, str], *, keep: bool) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Status"
    lines = [f"HTTP/1.1 {status} {reason}", "content-length: 0"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if not keep:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


Taker = Callable[[str, str], bool]
"""Takes a message by its id and its ``To``: True to accept it (``250``), False for ``421``."""

_EHLO = b"250-127.0.0.1\r\n250-SIZE 33554432\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 HELP\r\n"


class SmtpProtocol(Tracked):
    """An SMTP server session that logs each message's id and ``To`` and skips its body."""

    def __init__(self, open: set[asyncio.Transport], take: Taker) -> None:
        super().__init__(open)
        self._take = take
        self._buffer = bytearray()
        self._mail = self._rcpt = self._data = False
        self._scanned = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Greet the client."""
        super().connection_made(transport)
        assert self.transport is not None
        self.transport.write(b"220 127.0.0.1 ESMTP journeys benchmark\r\n")

    def data_received(self, data: bytes) -> None:
        """Answer every command and message the bytes so far complete."""
        self._buffer += data
        out: list[bytes] = []
        try:
            while self.transport is not None and not self.transport.is_closing():
                if self._data:
                    # The buffer starts with the CRLF that ended the DATA command.
                    end = self._buffer.find(b"\r\n.\r\n", self._scanned)
                    if end < 0:
                        self._scanned = max(0, len(self._buffer) - 4)
                        return
                    content = bytes(self._buffer[:end])
                    del self._buffer[: end + 5]
                    self._data = self._mail = self._rcpt = False
                    self._scanned = 0
                    out.append(self._message(content))
                    continue
                end = self._buffer.find(b"\n")
                if end < 0:
                    return
                line = bytes(self._buffer[:end]).rstrip(b"\r")
                del self._buffer[: end + 1]
                out.append(self._command(line))
        finally:
            if out and self.transport is not None:
                self.transport.write(b"".join(out))

    def _command(self, line: bytes) -> bytes:
        verb = line[:4].upper()
        if verb == b"EHLO":
            self._mail = self._rcpt = False
            return _EHLO
        if verb == b"HELO":
            self._mail = self._rcpt = False
            return b"250 127.0.0.1\r\n"
        if verb == b"MAIL":
            if self._mail:
                return b"503 Error: nested MAIL command\r\n"
            self._mail = True
            return b"250 OK\r\n"
        if verb == b"RCPT":
            if not self._mail:
                return b"503 Error: need MAIL command\r\n"
            self._rcpt = True
            return b"250 OK\r\n"
        if verb == b"DATA":
            if not self._rcpt:
                return b"503 Error: need RCPT command\r\n"
            self._data = True
            self._buffer[0:0] = b"\r\n"  # so a message of no lines ends on CRLF . CRLF too
            return b"354 End data with <CR><LF>.<CR><LF>\r\n"
        if verb == b"RSET":
            self._mail = self._rcpt = False
            return b"250 OK\r\n"
        if verb == b"NOOP":
            return b"250 OK\r\n"
        if verb == b"QUIT":
            assert self.transport is not None
            self.transport.write(b"221 Bye\r\n")
            self.transport.close()
            return b""
        return b"500 Error: command not recognized\r\n"

    def _message(self, content: bytes) -> bytes:
        headers = _logged_headers(content)
        key = headers.get(b"x-journeys-message-id") or headers.get(b"message-id") or ""
        if not self._take(key, headers.get(b"to", "")):
            return b"421 4.3.2 Service shutting down\r\n"
        return b"250 OK\r\n"


def _logged_headers(content: bytes) -> dict[bytes, str]:
    """The logged headers of a message (DATA content after its leading CRLF, dot-stuffed).

    Only the header block is read: dot-unstuffed, unfolded (a long id is folded onto a line
    of its own), the first of each logged name kept.
    """
    end = content.find(b"\r\n\r\n")
    block = content if end < 0 else content[:end]
    block = block.replace(b"\r\n..", b"\r\n.").replace(b"\r\n ", b" ").replace(b"\r\n\t", b"\t")
    found: dict[bytes, str] = {}
    for line in block.split(b"\r\n"):
        name, colon, value = line.partition(b":")
        name = name.strip().lower()
        if colon and name in _LOGGED and name not in found:
            found[name] = value.strip().decode("utf-8", "replace")
    return found
