"""ASGI middleware around the API: encoding of the request line, body limits, last resort.

- :class:`RequestLine` refuses a path or query that is not UTF-8 once percent-decoded
  (400): the ASGI server would replace the bad bytes with U+FFFD, and ``%FF`` and ``%FE``
  would name the same person.
- :class:`BodyLimit` counts the bytes of a body as they arrive — ``Content-Length`` or
  ``Transfer-Encoding: chunked`` alike — and answers 413 as soon as there are too many,
  without reading the rest.
- :class:`LastResort` turns an unexpected exception into a 500 in the documented shape and
  logs its traceback; the answer shows none of it.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from journeys.server.errors import error_body, problems_body, send_error
from journeys.server.paths import segment_path

__all__ = ["BodyLimit", "LastResort", "RequestLine"]

log = logging.getLogger("journeys.server")


class RequestLine:
    """400 for a path or query string that is not UTF-8 once percent-decoded."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request line, then pass the request on."""
        if scope["type"] == "http":
            # Without raw_path the server decoded the path already: nothing left to check.
            for part, raw in (
                ("path", scope.get("raw_path") or b""),
                ("query", scope.get("query_string") or b""),
            ):
                try:
                    unquote_to_bytes(raw).decode("utf-8")
                except UnicodeDecodeError as exc:
                    problem = (
                        f"{part}: expected UTF-8 text once percent-decoded, "
                        f"found an invalid byte at {exc.start}"
                    )
                    await send_error(send, 400, problems_body([problem]))
                    return
        await self.app(scope, receive, send)


class _TooLarge(Exception):
    pass


class BodyLimit:
    """413 once a body exceeds its limit: ``batch`` for paths ending in ``/batch``."""

    def __init__(self, app: ASGIApp, *, body: int, batch: int) -> None:
        self.app = app
        self.body = body
        self.batch = batch

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read the body up to the limit, then hand it to the application in one piece."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        batch = (segment_path(scope) or scope["path"]).endswith("/batch")  # not an id "x/batch"
        limit = self.batch if batch else self.body
        what = "batch" if batch else "request body"
        declared = dict(scope.get("headers", [])).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await self._refuse(send, what, limit, f"found {int(declared)}")
            return
        try:
            first = await self._read(receive, limit)
        except _TooLarge:
            await self._refuse(send, what, limit, "found more")
            return
        given = False

        async def replay() -> Message:
            nonlocal given
            if not given:
                given = True
                return first
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _read(receive: Receive, limit: int) -> Message:
        """The whole body as one message (or the disconnect that cut it short)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return message
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

    @staticmethod
    async def _refuse(send: Send, what: str, limit: int, found: str) -> None:
        message = f"{what} too large: expected at most {limit} bytes, {found}"
        await send_error(send, 413, error_body(message, [{"field": "body", "message": message}]))


class LastResort:
    """A 500 in the documented shape for any exception nothing else handled."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the application; log and answer what escapes it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise  # too late for an answer: the server closes the connection
            await send_error(
                send, 500, error_body("internal server error: the server log has the details")
            )
