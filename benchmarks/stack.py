"""What a benchmark runs the engine on: its settings, worker processes, a scratch database."""

from __future__ import annotations

import contextlib
import contextvars
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from benchmarks.peers import RemotePeers
from benchmarks.profiling import Sampler
from journeys.config import Settings
from journeys.devserver import DevServer

__all__ = [
    "POSTGRES",
    "TemporalServer",
    "WorkerPool",
    "profiled",
    "scratch_database",
    "settings_for",
]

POSTGRES = os.environ.get("JOURNEYS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
"""A server to make scratch databases on (nothing in this database itself is touched)."""


def settings_for(
    server: DevServer, folder: Path, peers: RemotePeers, queue: str, store_url: str | None = None
) -> Settings:
    """The engine's settings against the local peers (SQLite in ``folder`` by default)."""
    return Settings.model_validate(
        {
            "temporal": {"address": server.address, "task_queue": queue},
            "store": {"url": store_url or f"sqlite:///{folder}/store.db"},
            "email": {"host": "127.0.0.1", "port": peers.smtp_port, "connections": 8},
            "webhook": {"allow_private": ["127.0.0.0/8"]},
            "server": {"tokens": ["bench"], "rate_limit": 1_000_000, "max_batch_bytes": 10_000_000},
        }
    )


class TemporalServer(DevServer):
    """The dev server, which a fault can also kill outright (SIGKILL: no shutdown at all)."""

    def kill(self) -> None:
        """SIGKILL the server; :meth:`start` brings it back on its port and state file."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()


_PROFILE: contextvars.ContextVar[tuple[Path, list[Path]] | None] = contextvars.ContextVar(
    "profile", default=None
)


@contextlib.contextmanager
def profiled(prefix: Path) -> Iterator[list[Path]]:
    """Profile the worker processes of every :class:`WorkerPool` started in the block.

    Each process gets ``<prefix>-worker<n>.txt`` (py-spy, :mod:`benchmarks.profiling`),
    written when the pool stops; the list yielded holds their paths by then.
    """
    written: list[Path] = []
    token = _PROFILE.set((prefix, written))
    try:
        yield written
    finally:
        _PROFILE.reset(token)


class WorkerPool:
    """``python -m workers`` processes on the settings' task queue and store.

    Args:
        settings: the configuration they run with (passed in ``JOURNEYS_*`` variables).
        count: how many processes.
        log: a file for their output (discarded by default).

    """

    def __init__(self, settings: Settings, count: int = 1, log: Path | None = None) -> None:
        self.env = {
            **os.environ,
            "JOURNEYS_TEMPORAL_ADDRESS": settings.temporal.address,
            "JOURNEYS_TEMPORAL_TASK_QUEUE": settings.temporal.task_queue,
            "JOURNEYS_STORE_URL": settings.store.url,
            "JOURNEYS_EMAIL_HOST": settings.email.host,
            "JOURNEYS_EMAIL_PORT": str(settings.email.port),
            "JOURNEYS_EMAIL_CONNECTIONS": str(settings.email.connections),
            "JOURNEYS_WEBHOOK_ALLOW_PRIVATE": ",".join(settings.webhook.allow_private),
        }
        self.log = log
        self._profile = _PROFILE.get()
        self._samplers: list[Sampler] = []
        self.processes = [self._spawn() for _ in range(count)]

    def _spawn(self) -> subprocess.Popen[bytes]:
        output = self.log.open("ab") if self.log else subprocess.DEVNULL
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "workers"],
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            if self.log:
                output.close()  # type: ignore[union-attr]
        if self._profile is not None:
            prefix, _ = self._profile
            out = prefix.with_name(f"{prefix.name}-worker{len(self._samplers)}.txt")
            title = f"python -m workers (pid {process.pid}), {prefix.name}"
            self._samplers.append(Sampler(process.pid, out, title))
        return process

    def peak_rss_mb(self) -> float:
        """The largest peak resident memory of the running processes, in MB."""
        peak = 0.0
        for process in self.processes:
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]) / 1024)
        return peak

    def kill(self, index: int) -> None:
        """SIGKILL process ``index`` and start a new one in its place."""
        self.processes[index].kill()
        self.processes[index].wait()
        self.processes[index] = self._spawn()

    def exited(self) -> list[int]:
        """The exit codes of processes that ended on their own (each is replaced)."""
        codes = []
        for i, process in enumerate(self.processes):
            code = process.poll()
            if code is not None:
                codes.append(code)
                self.processes[i] = self._spawn()
        return codes

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM every process (they finish their tasks), SIGKILL those still up after it."""
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._profile is not None:
            _, written = self._profile
            written.extend(p for s in self._samplers if (p := s.finish()) is not None)
            self._samplers.clear()


@contextlib.asynccontextmanager
async def scratch_database(prefix: str = "journeys_bench") -> AsyncIterator[str]:
    """A PostgreSQL database made on :data:`POSTGRES` for the block, and dropped after.

    Raises:
        OSError: the server cannot be reached.

    """
    import asyncpg

    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(POSTGRES)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"{POSTGRES.rsplit('/', 1)[0]}/{name}"
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
