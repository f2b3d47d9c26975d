"""``python -m benchmarks.track``: events per second through the HTTP API, as in production.

The API server runs in a process of its own (``journeys serve``, with the store on SQLite
or on a scratch PostgreSQL database), and this process is only the load generator: plain
HTTP/1.1 over keep-alive connections, the requests made before the clock starts (its
ceiling is measured the same way against ``/healthz`` and reported beside the figures).

The journeys directory and the event stream exercise every path of ``track``:

- **de-duplication** — about 5% of the events repeat an earlier ``event_id`` (within a
  batch and across batches too);
- **signals** — 100 people have a running journey (``waiter``) waiting for ``page_view``;
- **event-triggered starts** — ``welcome`` starts on ``signed_up`` (entry once);
- **segment entries** — ``engaged`` (10 page views or more) reads the tracked event and
  starts ``engaged_hello``; ``buyers`` (2 purchases or more) starts ``buyer_hello``;
  ``pro_users`` (an attribute) starts ``pro_hello`` and no event can change it.

No worker runs: ingest is what is measured (Temporal accepts the starts and signals, and
the runs wait for a worker). Figures: events per second one event per request and in
batches, and the server process's CPU seconds per event (utime + stime from /proc).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.profiling import Sampler, top_packages
from benchmarks.stack import scratch_database
from journeys.client import JourneysClient
from journeys.config import Settings
from journeys.devserver import DevServer, free_port
from journeys.store import Store

__all__ = ["cli", "track", "track_on"]

PEOPLE = 2000
WAITERS = 100
TOKEN = "bench"

SEGMENTS = """
segments:
  engaged: { event: page_view, count: { gte: 10 } }
  buyers: { event: purchase, count: { gte: 2 } }
  pro_users: { attribute: plan, op: eq, value: pro }
"""

JOURNEYS = {
    "waiter": "journey: waiter\nsteps:\n  - wait_for: viewed\n    event: page_view\n"
    "    timeout: 1d\n  - wait: 1d\n",
    "welcome": "journey: welcome\ntrigger: { event: signed_up }\nentry: once\n"
    "steps:\n  - wait: 1d\n",
    "engaged_hello": "journey: engaged_hello\ntrigger: { segment: engaged }\nentry: once\n"
    "steps:\n  - wait: 1d\n",
    "buyer_hello": "journey: buyer_hello\ntrigger: { segment: buyers }\nentry: once\n"
    "steps:\n  - wait: 1d\n",
    "pro_hello": "journey: pro_hello\ntrigger: { segment: pro_users }\nentry: once\n"
    "steps:\n  - wait: 1d\n",
}


def write_journeys(directory: Path) -> Path:
    """The benchmark's journeys and segments in a journeys directory."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "segments.yaml").write_text(SEGMENTS)
    for name, text in JOURNEYS.items():
        (directory / f"{name}.yaml").write_text(text)
    return directory


def person(i: int, tag: str = "") -> str:
    """Person ``i`` of a run (``tag``: the run's own, as runs share a Temporal server)."""
    return f"{tag}p{i:05d}"


@dataclass
class Stream:
    """Events to send: a person, a name, an ``event_id`` (some repeat an earlier one)."""

    rng: random.Random
    people: int = PEOPLE
    tag: str = ""
    issued: int = 0

    def events(self, count: int) -> list[dict[str, Any]]:
        out = []
        for _ in range(count):
            roll = self.rng.random()
            name = (
                "page_view"
                if roll < 0.80
                else "click"
                if roll < 0.96
                else "signed_up"
                if roll < 0.97
                else "purchase"
            )
            if self.issued and self.rng.random() < 0.05:
                event_id = f"e{self.rng.randrange(max(0, self.issued - 200), self.issued)}"
            else:
                event_id = f"e{self.issued}"
                self.issued += 1
            out.append(
                {
                    "person": person(self.rng.randrange(self.people), self.tag),
                    "name": name,
                    "data": {"path": f"/page/{self.rng.randrange(50)}"},
                    "event_id": event_id,
                }
            )
        return out


def _request(path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def load(
    port: int, requests: Sequence[bytes], connections: int
) -> tuple[float, list[dict[str, Any]]]:
    """Send prepared requests over ``connections`` keep-alive connections; seconds, bodies."""
    answers: list[dict[str, Any]] = [{}] * len(requests)
    following = iter(range(len(requests)))

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for index in following:
                writer.write(requests[index])
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length)
                if status != 200:
                    raise RuntimeError(f"HTTP {status}: {body[:300]!r}")
                answers[index] = json.loads(body)
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    return time.perf_counter() - began, answers


def cpu_seconds(pid: int) -> float:
    """A process's user + system CPU time so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _postgres_cpu_seconds() -> float:
    """The CPU time so far of every PostgreSQL process on this machine (0 without one)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = stat.read_text()
            if text.split("(", 1)[1].startswith("postgres)"):
                total += cpu_seconds(int(stat.parent.name))
    return total


def _machine_seconds() -> tuple[float, float]:
    """The whole machine's busy and total CPU seconds so far (every core, /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = fields[3] + fields[4]  # idle, iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle) / tick, sum(fields) / tick


class Meter:
    """Where the machine's CPU went during a phase: ms per event by process, and how busy.

    Args:
        server: the API server's process id.
        temporal: the Temporal dev server's process id.

    """

    def __init__(self, server: int, temporal: int | None) -> None:
        self.pids = {"server": server, **({"temporal": temporal} if temporal else {})}
        self._start = self._now()

    def _now(self) -> dict[str, float]:
        now = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        now["load generator"] = time.process_time()
        now["postgresql"] = _postgres_cpu_seconds()
        now["busy"], now["all"] = _machine_seconds()
        return now

    def per_event(self, events: int) -> dict[str, float]:
        """CPU per event of each process since the start (ms), and the machine's busy share."""
        end = self._now()
        spent = {name: end[name] - self._start[name] for name in end}
        found = {
            name: round(spent[name] * 1000 / events, 3)
            for name in (*self.pids, "load generator", "postgresql")
        }
        found["machine_busy_share"] = round(spent["busy"] / spent["all"], 3) if spent["all"] else 0
        return found


@contextlib.asynccontextmanager
async def api_process(
    settings: Settings, directory: Path, log: Path, profile: Path | None = None
) -> AsyncIterator[tuple[int, subprocess.Popen[bytes]]]:
    """``journeys serve`` in a process of its own; yields its port and process."""
    port = free_port()
    env = {
        **os.environ,
        "JOURNEYS_TEMPORAL_ADDRESS": settings.temporal.address,
        "JOURNEYS_TEMPORAL_TASK_QUEUE": settings.temporal.task_queue,
        "JOURNEYS_STORE_URL": settings.store.url,
        "JOURNEYS_DIRECTORY": str(directory),
        "JOURNEYS_SERVER_TOKENS": TOKEN,
        "JOURNEYS_SERVER_RATE_LIMIT": "1000000",
        "JOURNEYS_SERVER_MAX_BATCH_BYTES": "10000000",
    }
    runner = ["-m", "benchmarks.track", "--serve-profiled", str(profile)] if profile else []
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, *(runner or ["-m", "journeys"]), "serve", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"journeys serve exited: see {log}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError("journeys serve did not start in 60 s") from None
                await asyncio.sleep(0.1)
        yield port, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _prepare(settings: Settings, directory: Path, count: int, tag: str) -> None:
    """People (a quarter on pro: they enter ``pro_users``), the waiters' running journeys."""
    async with await JourneysClient.connect(settings, directory=directory) as client:
        people = [
            {
                "type": "identify",
                "id": person(i, tag),
                "attributes": {"plan": "pro" if i % 4 == 0 else "free"},
            }
            for i in range(count)
        ]
        await client.batch(people)
        waiters = [person(i, tag) for i in range(min(WAITERS, count // 10))]
        await client.trigger("waiter", waiters, cohorts=False)


def _plan(i: int) -> str:
    return "pro" if i % 4 == 0 else "free"


def _tally(answers: list[dict[str, Any]], into: dict[str, int]) -> None:
    for answer in answers:
        if "results" in answer:
            for r in answer["results"]:
                into["failed"] += not r["ok"]
                into["started"] += len(r["started"])
        else:
            into["duplicates_skipped"] += not answer["recorded"]
            into["signals_reached"] += answer["reached"]
            into["started"] += len(answer["started"])


async def track_on(
    server: DevServer,
    folder: Path,
    store_url: str,
    *,
    single: int,
    batches: int,
    batch_size: int,
    connections: int = 32,
    batch_connections: int = 4,
    profile: Path | None = None,
    sample: Path | None = None,
) -> dict[str, Any]:
    """The benchmark against one store; returns its figures.

    ``profile`` runs the server under cProfile (statistics to that file); ``sample`` has
    py-spy sample it while the events go in (a text profile to that file, and its top
    packages under ``profile_top``) — the lighter of the two.

    There are 2,000 people (fewer in a small run: one for each two events, at least 50).
    """
    people = min(PEOPLE, max(50, (single + batches * batch_size) // 2))
    directory = write_journeys(folder / "journeys")
    settings = Settings.model_validate(
        {
            "temporal": {"address": server.address, "task_queue": f"bench-track-{folder.name}"},
            "store": {"url": store_url},
        }
    )
    tag = f"{secrets.token_hex(2)}-"
    await _prepare(settings, directory, people, tag)
    stream = Stream(random.Random(12), people, tag)
    single_events = stream.events(single)
    singles = [
        _request(
            "/v1/events",
            json.dumps(
                {"person_id": e["person"], "name": e["name"], "data": e["data"]}
                | {"event_id": e["event_id"]}
            ).encode(),
        )
        for e in single_events
    ]
    batch_events = [stream.events(batch_size) for _ in range(batches)]
    batched = [
        _request(
            "/v1/batch",
            json.dumps(
                {
                    "operations": [
                        {
                            "type": "track",
                            "id": e["person"],
                            "event": e["name"],
                            "data": e["data"],
                            "event_id": e["event_id"],
                        }
                        for e in events
                    ]
                }
            ).encode(),
        )
        for events in batch_events
    ]
    health = b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n"
    tally = dict.fromkeys(("duplicates_skipped", "signals_reached", "started", "failed"), 0)
    result: dict[str, Any] = {
        "batch_size": batch_size,
        "connections": connections,
        "people": people,
    }
    async with api_process(settings, directory, folder / "serve.log", profile) as (port, proc):
        mine, theirs = time.process_time(), cpu_seconds(proc.pid)
        seconds, _ = await load(port, [health] * 2000, connections)
        result["loadgen_healthz_requests_per_second"] = 2000 / seconds
        result["loadgen_cpu_ms_per_request"] = (time.process_time() - mine) * 1000 / 2000
        # the HTTP stack's own cost (uvicorn, FastAPI, the guards): a floor under each request
        result["healthz_server_cpu_ms_per_request"] = (cpu_seconds(proc.pid) - theirs) * 1000 / 2000
        sampler = (
            Sampler(proc.pid, sample, f"journeys serve, track on {store_url.split(':')[0]}")
            if sample
            else None
        )
        meter = Meter(proc.pid, server.pid)
        seconds, answers = await load(port, singles, connections)
        result["single_events_per_second"] = single / seconds
        result["single_cpu_ms_per_event"] = meter.per_event(single)
        result["single_server_cpu_ms_per_event"] = result["single_cpu_ms_per_event"]["server"]
        _tally(answers, tally)
        meter = Meter(proc.pid, server.pid)
        seconds, answers = await load(port, batched, batch_connections)
        total = batches * batch_size
        result["batch_events_per_second"] = total / seconds
        result["batch_cpu_ms_per_event"] = meter.per_event(total)
        result["batch_server_cpu_ms_per_event"] = result["batch_cpu_ms_per_event"]["server"]
        result["batch_connections"] = batch_connections
        _tally(answers, tally)
    if sampler is not None:
        written = sampler.finish()
        if written is not None:
            result["profile"] = [str(written)]
            result["profile_top"] = top_packages(written.read_text())
    sent = [e["event_id"] for e in single_events] + [
        e["event_id"] for events in batch_events for e in events
    ]
    store = await Store.open(store_url)
    try:
        stored = 0
        for i in range(people):
            stored += len(await store.events.of_person(person(i, tag), limit=100_000))
    finally:
        await store.close()
    result.update(tally)
    result["events_sent"] = len(sent)
    result["duplicates_sent"] = len(sent) - len(set(sent))
    result["events_stored"] = stored
    if stored != len(set(sent)):
        raise AssertionError(f"{stored} events stored, {len(set(sent))} distinct ids sent")
    return result


async def track(
    server: DevServer,
    folder: Path,
    single: int,
    batches: int,
    batch_size: int = 100,
    profile: Path | None = None,
) -> dict[str, Any]:
    """``track_sqlite`` and ``track_postgresql`` (skipped when PostgreSQL is not reachable).

    With ``profile`` (a folder), py-spy samples the API server of each run into it.
    """
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    sqlite = folder / "track-sqlite"
    sqlite.mkdir()
    results["track_sqlite"] = await track_on(
        server,
        sqlite,
        f"sqlite:///{sqlite}/store.db",
        single=single,
        batches=batches,
        batch_size=batch_size,
        sample=profile / "track_sqlite-server.txt" if profile else None,
    )
    postgres = folder / "track-postgresql"
    postgres.mkdir()
    try:
        async with scratch_database("journeys_track") as url:
            results["track_postgresql"] = await track_on(
                server,
                postgres,
                url,
                single=single,
                batches=batches,
                batch_size=batch_size,
                sample=profile / "track_postgresql-server.txt" if profile else None,
            )
    except OSError as exc:
        results["track_postgresql"] = {"status": f"skipped: {exc}"}
    return results


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="journeys-track-") as tmp:
        folder = Path(tmp)
        server = DevServer(log_file=folder / "temporal.log")
        server.start()
        try:
            if args.store == "both":
                return await track(server, folder, args.single, args.batches, args.batch_size)
            run = folder / f"track-{args.store}"
            run.mkdir()
            common = {
                "single": args.single,
                "batches": args.batches,
                "batch_size": args.batch_size,
                "connections": args.connections,
                "batch_connections": args.batch_connections,
                "profile": Path(args.profile).absolute() if args.profile else None,
            }
            if args.store == "sqlite":
                return {
                    "track_sqlite": await track_on(
                        server, run, f"sqlite:///{run}/store.db", **common
                    )
                }
            async with scratch_database("journeys_track") as url:
                return {"track_postgresql": await track_on(server, run, url, **common)}
        finally:
            server.stop()


def _lines(results: dict[str, Any]) -> Iterator[str]:
    for key, value in results.items():
        if "status" in value:
            yield f"{key}: {value['status']}"
            continue
        yield (
            f"{key}: {value['single_events_per_second']:.0f} ev/s one a request "
            f"({value['single_server_cpu_ms_per_event']:.2f} server CPU ms/event), "
            f"{value['batch_events_per_second']:.0f} ev/s in batches of {value['batch_size']} "
            f"({value['batch_server_cpu_ms_per_event']:.2f} ms/event); load generator "
            f"ceiling {value['loadgen_healthz_requests_per_second']:.0f} req/s, server CPU "
            f"{value.get('healthz_server_cpu_ms_per_request', 0):.2f} ms per /healthz"
        )
        for phase in ("single", "batch"):
            spent = value.get(f"{phase}_cpu_ms_per_event", {})
            yield f"  {phase}: " + ", ".join(f"{k} {v}" for k, v in spent.items())


def _serve_profiled(out: str, argv: list[str]) -> int:
    """``journeys serve`` under cProfile, the statistics written to ``out`` when it stops."""
    import cProfile

    from journeys.cli import main

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        return main(argv)
    finally:
        profiler.disable()
        profiler.dump_stats(out)


def cli(argv: list[str] | None = None) -> int:
    """Run the track benchmark alone and print its figures."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve-profiled"]:
        return _serve_profiled(argv[1], argv[2:])
    parser = argparse.ArgumentParser(prog="python -m benchmarks.track", description=__doc__)
    parser.add_argument("--single", type=int, default=3000)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--batch-connections", type=int, default=4)
    parser.add_argument("--store", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--profile", help="run the server under cProfile, stats to this file")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    results = asyncio.run(_main(args))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    for line in _lines(results):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
