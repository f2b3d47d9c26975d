"""The local providers in a process of their own, so they do not share the benchmark's GIL.

``python -m benchmarks.peers SMTP_PORT HTTP_PORT CONTROL_PORT`` runs the SMTP server and the
webhook receiver of :mod:`benchmarks.receivers`, and a control endpoint on CONTROL_PORT:
``GET /`` answers ``{"mail": n, "hooks": n}``, ``GET /ledger`` every accepted message,
``GET /state`` since when the SMTP server is down and the webhook receiver refusing;
``POST /smtp/down?after=n`` and ``/smtp/up`` take the SMTP server down (after n more
messages) and back, ``POST /hooks/refuse?status=429&retry_after=2&after=n`` makes the
webhook receiver refuse every message (after n more) and ``POST /hooks/accept`` makes it
accept them again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from benchmarks.receivers import EventLoopThread, HookReceiver, Ledger, SmtpReceiver


class RemotePeers:
    """Starts the peers process, reads its ledger and puts its providers through faults."""

    def __init__(self) -> None:
        from journeys.devserver import free_port  # not at the top: the peers process is lean

        self.smtp_port, self.http_port, self.count_port = free_port(), free_port(), free_port()
        self._control = f"http://127.0.0.1:{self.count_port}"
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
        """The webhook receiver's base URL."""
        return f"http://127.0.0.1:{self.http_port}"

    def counts(self) -> dict[str, int]:
        """Messages accepted so far: ``{"mail": n, "hooks": n}``."""
        answer: dict[str, int] = httpx.get(f"{self._control}/", timeout=5).json()
        return answer

    def ledger(self) -> dict[str, Any]:
        """Every accepted message and the refusals by kind.

        ``{"accepted": [Accepted as a dict, ...], "refused": {"webhook": n}}``.
        """
        answer: dict[str, Any] = httpx.get(f"{self._control}/ledger", timeout=30).json()
        return answer

    def state(self) -> dict[str, float | None]:
        """``{"smtp_down_since": t, "hooks_refusing_since": t}``: Unix times, or None."""
        answer: dict[str, float | None] = httpx.get(f"{self._control}/state", timeout=5).json()
        return answer

    def smtp_down(self, after: int = 0) -> None:
        """Stop the SMTP server, after ``after`` more messages, until :meth:`smtp_up`."""
        self._post(f"/smtp/down?after={after}")

    def smtp_up(self) -> None:
        """Start the SMTP server again on the same port."""
        self._post("/smtp/up")

    def refuse_hooks(self, status: int, retry_after: float | None = None, after: int = 0) -> None:
        """Refuse webhooks with ``status``, after ``after`` more, until :meth:`accept_hooks`."""
        query = f"?status={status}&after={after}"
        query += f"&retry_after={retry_after}" if retry_after else ""
        self._post(f"/hooks/refuse{query}")

    def accept_hooks(self) -> None:
        """Accept webhooks again."""
        self._post("/hooks/accept")

    def cpu_seconds(self) -> float:
        """CPU time the peers process has used so far (user and system), in seconds."""
        fields = Path(f"/proc/{self._process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _post(self, path: str) -> None:
        httpx.post(f"{self._control}{path}", timeout=30).raise_for_status()

    def stop(self) -> None:
        """Stop the peers process."""
        self._process.send_signal(signal.SIGTERM)
        self._process.wait(timeout=30)


class _ControlServer(ThreadingHTTPServer):
    request_queue_size = 64
    daemon_threads = True


def main(smtp_port: int, http_port: int, control_port: int) -> None:
    """Run the peers until SIGTERM."""
    ledger, loop = Ledger(), EventLoopThread()
    smtp, hooks = SmtpReceiver(smtp_port, ledger, loop), HookReceiver(http_port, ledger, loop)
    smtp.start()
    hooks.start()

    class Control(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/ledger":
                self._answer(ledger.dump())
            elif path == "/state":
                since = {"smtp_down_since": smtp.down_since}
                self._answer({**since, "hooks_refusing_since": hooks.refusing_since})
            else:
                self._answer(ledger.counts())

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            after = int(query.get("after", 0))
            if parts.path == "/smtp/down":
                smtp.stop(after)
            elif parts.path == "/smtp/up":
                smtp.start()
            elif parts.path == "/hooks/refuse":
                retry_after = query.get("retry_after")
                seconds = float(retry_after) if retry_after else None
                hooks.refuse(int(query["status"]), seconds, after)
            elif parts.path == "/hooks/accept":
                hooks.refuse(None)
            else:
                self.send_error(404)
                return
            self._answer({"ok": True})

        def _answer(self, value: Any) -> None:
            body = json.dumps(value).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    control = _ControlServer(("127.0.0.1", control_port), Control)
    threading.Thread(target=control.serve_forever, daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    control.shutdown()
    smtp.stop()
    hooks.stop()


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:4]))
