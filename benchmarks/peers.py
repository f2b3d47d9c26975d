"""The local peers in a process of their own, so they do not share the benchmark's GIL.

``python -m benchmarks.peers SMTP_PORT HTTP_PORT COUNT_PORT`` runs the mail catcher and the
webhook sink, and answers ``GET /`` on COUNT_PORT with ``{"mail": n, "hooks": n}``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from journeys.devserver import free_port
from journeys.sinks import MailCatcher, WebhookSink


class RemotePeers:
    """Starts the peers process and reads its counters."""

    def __init__(self) -> None:
        self.smtp_port, self.http_port, self.count_port = free_port(), free_port(), free_port()
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.peers",
                str(self.smtp_port),
                str(self.http_port),
                str(self.count_port),
            ],
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                self.counts()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    raise RuntimeError("the benchmark peers did not start") from None
                time.sleep(0.1)

    @property
    def hook_url(self) -> str:
        """The webhook sink's base URL."""
        return f"http://127.0.0.1:{self.http_port}"

    def counts(self) -> dict[str, int]:
        """Messages received so far: ``{"mail": n, "hooks": n}``."""
        answer: dict[str, int] = httpx.get(f"http://127.0.0.1:{self.count_port}/", timeout=5).json()
        return answer

    def stop(self) -> None:
        """Stop the peers process."""
        self._process.send_signal(signal.SIGTERM)
        self._process.wait(timeout=30)


def main(smtp_port: int, http_port: int, count_port: int) -> None:
    """Run the peers until SIGTERM."""
    mail, hooks = MailCatcher(smtp_port).start(), WebhookSink(http_port).start()

    class Counts(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"mail": len(mail.messages), "hooks": len(hooks.requests)})
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, format: str, *args: Any) -> None:
            pass

    counter = ThreadingHTTPServer(("127.0.0.1", count_port), Counts)
    threading.Thread(target=counter.serve_forever, daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    counter.shutdown()
    mail.stop()
    hooks.stop()


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:4]))
