"""One scenario on one store: a fresh stack, the journeys, the fault, then the count.

Each run gets a Temporal dev server of its own (keeping its state in a file, so it can be
killed and restarted), the providers in a process of their own, worker processes and a
store (a SQLite file, or a scratch PostgreSQL database dropped afterwards). It triggers the
reference journey (email → wait 2s → branch → webhook) for a cohort, and for single runs one
by one over the outage's length, lets the scenario do its damage meanwhile, waits until
every run has ended or the time to settle has run out, stops the workers, and counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from temporalio.service import RPCError

from benchmarks import reference
from benchmarks.faults.scenarios import SCENARIOS, Stage
from benchmarks.faults.tally import tally
from benchmarks.peers import RemotePeers
from benchmarks.stack import TemporalServer, WorkerPool, scratch_database, settings_for
from definitions.errors import EngineUnavailableError
from journeys.client import JourneysClient
from journeys.models import TriggerStatus

__all__ = ["Options", "run_scenario"]


@dataclass(frozen=True)
class Options:
    """How big a run is and how hard its faults are."""

    recipients: int = 300
    """Recipients of the cohort trigger."""
    singles: int = 30
    """Recipients triggered as runs of their own."""
    workers: int = 2
    outage: float = 25.0
    """Seconds a provider is down (or storming)."""
    kills: int = 3
    """Worker kills in the worker-kill scenario."""
    settle: float = 120.0
    """Seconds after the fault's end (and the last trigger) by which every run must have
    ended, or it is stuck."""
    seed: int = 1


_MIGRATING = asyncio.Lock()
"""Alembic's migration context is global to the process: one store is opened at a time."""


@contextlib.asynccontextmanager
async def _store(backend: str, folder: Path) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{folder}/store.db"
    else:
        async with scratch_database("journeys_faults") as url:
            yield url


async def _states(client: JourneysClient, triggers: list[str]) -> dict[str, int] | None:
    """Recipients by run state across the triggers, and how many have not ended.

    ``unfinished`` counts the recipients running or pending (and a trigger whose workflows
    have not all closed as one). None while Temporal cannot answer.
    """
    counts: Counter[str] = Counter()
    try:
        for trigger in triggers:
            status = await client.status(trigger)
            assert isinstance(status, TriggerStatus)
            mine = Counter(status.counts)
            if status.starting:
                mine["pending"] += max(0, status.recipients - status.started)
            waiting = mine["running"] + mine["pending"]
            mine["unfinished"] = waiting or (0 if status.done else 1)
            counts.update(mine)
    except Exception:  # the server is down or restarting: ask again
        return None
    return dict(counts)


async def _trigger_single(
    client: JourneysClient, person: dict[str, str], data: dict[str, Any], patience: float
) -> str:
    """Trigger one recipient's run, retrying while Temporal is down (the key makes it safe)."""
    deadline = time.monotonic() + patience
    while True:
        try:
            handle = await client.trigger(
                "reference", [person], data=data, cohorts=False, idempotency_key=person["id"]
            )
            return handle.trigger_id
        except (EngineUnavailableError, RPCError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def _watch(stage: Stage, stop: asyncio.Event) -> None:
    """Replace (and note) worker processes that exit on their own."""
    while not stop.is_set():
        for code in stage.workers.exited():
            stage.timeline.notes.append(f"a worker exited on its own (code {code}); restarted")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


async def run_scenario(name: str, backend: str, options: Options, folder: Path) -> dict[str, Any]:
    """Run scenario ``name`` on ``backend`` (``sqlite`` or ``postgresql``) and count."""
    inject, resume_kind = SCENARIOS[name]
    folder.mkdir(parents=True)
    rng = random.Random(f"{options.seed}/{name}/{backend}")
    people = reference.people(options.recipients + options.singles)
    server = TemporalServer(db_file=folder / "temporal.db", log_file=folder / "temporal.log")
    server.start()
    peers = RemotePeers()
    try:
        async with _store(backend, folder) as url:
            settings = settings_for(server, folder, peers, f"faults-{secrets.token_hex(4)}", url)
            directory = reference.write(folder / "journeys")
            async with _MIGRATING:
                client = await JourneysClient.connect(settings, directory=directory)
            async with client:
                workers = WorkerPool(settings, options.workers, log=folder / "worker.log")
                stage = Stage(
                    peers, workers, server, len(people), options.outage, options.kills, rng
                )
                stop = asyncio.Event()
                watcher = asyncio.create_task(_watch(stage, stop))
                try:
                    result = await _journeys(stage, client, people, inject, options)
                finally:
                    stop.set()
                    await watcher
                    workers.stop()  # SIGTERM: what they were sending is sent and logged
                ledger = await asyncio.to_thread(peers.ledger)
                log = await client.store.messages.find(limit=10 * len(people) + 100)
    finally:
        peers.stop()
        server.stop()
    singles = {p["id"] for p in people[options.recipients :]}
    counted = tally(people, singles, ledger["accepted"], log, stage.timeline, resume_kind)
    return {
        "scenario": name,
        "backend": backend,
        **result,
        **counted,
        "refused": ledger["refused"],
        "fault": asdict(stage.timeline),
    }


async def _journeys(
    stage: Stage,
    client: JourneysClient,
    people: list[dict[str, str]],
    inject: Callable[[Stage], Awaitable[None]],
    options: Options,
) -> dict[str, Any]:
    """Trigger, put the stage through its fault, and wait for every run to end.

    The cohort is triggered at once; the single runs one by one over ``outage`` seconds,
    so that some are under way whenever the fault strikes.
    """
    cohort, singles = people[: options.recipients], people[options.recipients :]
    data = {"sink": stage.peers.hook_url}
    began = time.time()
    triggers = [(await client.trigger("reference", cohort, data=data, cohorts=True)).trigger_id]

    async def trickle() -> None:
        for i, person in enumerate(singles):
            await asyncio.sleep(max(0.0, began + i * options.outage / len(singles) - time.time()))
            triggers.append(await _trigger_single(client, person, data, stage.patience))

    await asyncio.gather(trickle(), inject(stage))
    end = stage.timeline.ended
    deadline = time.time() + options.settle  # the fault is over, every run triggered
    done_at, states, polls = None, None, 0
    while time.time() < deadline:
        states = await _states(client, triggers)
        polls += 1
        if states is not None and not states["unfinished"]:
            done_at = time.time()
            break
        await asyncio.sleep(0.5)
    states = states or await _states(client, triggers) or {"unfinished": len(people)}
    return {
        "recipients": options.recipients,
        "singles": options.singles,
        "stuck": states.pop("unfinished"),
        "run_states": states,
        "seconds": (done_at or time.time()) - began,
        "done_seconds": done_at - end if done_at is not None and end is not None else None,
        "done_during_fault": end is not None and done_at is not None and polls == 1,
    }
