"""A small threaded HTTP server on loopback whose answers come from a function."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

from journeys.dev.shapes import HttpRequest, Reply
from journeys.devserver import free_port

__all__ = ["LoopbackServer", "ThreadedServer"]


class ThreadedServer:
    """A threaded HTTP server on ``127.0.0.1:port``, serving from a thread of its own.

    Args:
        handler: the request handler class.
        port: the port to listen on (a free one by default).

    """

    def __init__(self, handler: type[BaseHTTPRequestHandler], *, port: int | None = None) -> None:
        self.port = port or free_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        """Start serving in a thread of its own."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()


class LoopbackServer(ThreadedServer):
    """Answers every POST on ``127.0.0.1:port`` with ``handle(request)`` as JSON.

    Args:
        handle: turns a request into a status and a JSON body.
        port: the port to listen on (a free one by default).

    """

    def __init__(self, handle: Callable[[HttpRequest], Reply], *, port: int | None = None) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, body = handle(HttpRequest("POST", self.path, headers, raw))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        super().__init__(Handler, port=port)
