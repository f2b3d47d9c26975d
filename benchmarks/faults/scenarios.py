"""The faults, one named scenario each, and what each recorded of itself.

A scenario waits until the journeys are under way (a share of the messages accepted), does
its damage, undoes it, and writes down when: the fault's start and end, and the moment of
every SIGKILL of a worker (a duplicate that spans one is inside the documented window).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from benchmarks.peers import RemotePeers
from benchmarks.stack import TemporalServer, WorkerPool

__all__ = ["SCENARIOS", "Stage", "Timeline"]


@dataclass
class Timeline:
    """What a scenario did, and when (Unix seconds)."""

    started: float | None = None
    """The fault began (the first kill, the provider going down)."""
    ended: float | None = None
    """The fault was over: the last process restarted, the provider back."""
    kills: list[float] = field(default_factory=list)
    """Every SIGKILL of a worker process."""
    notes: list[str] = field(default_factory=list)


@dataclass
class Stage:
    """What a scenario acts on, and how far the journeys have got."""

    peers: RemotePeers
    workers: WorkerPool
    server: TemporalServer
    expected: int
    """Messages of each kind (emails, webhooks) that should be accepted."""
    outage: float
    """Seconds a provider stays down."""
    kills: int
    """Worker kills in the worker-kill scenario."""
    rng: random.Random
    timeline: Timeline = field(default_factory=Timeline)
    patience: float = 120.0
    """Seconds to wait for the journeys to reach the point a fault starts at."""

    async def accepted(self) -> dict[str, int]:
        """Messages accepted so far: ``{"mail": n, "hooks": n}``."""
        return await asyncio.to_thread(self.peers.counts)

    async def until(self, kind: str, share: float) -> None:
        """Wait until ``share`` of the messages of ``kind`` were accepted.

        ``kind`` is ``email``, ``webhook`` or ``any``. When the patience runs out first,
        the fault starts anyway (and a note says so).
        """
        goal = share * self.expected * (2 if kind == "any" else 1)
        deadline = time.monotonic() + self.patience
        while time.monotonic() < deadline:
            counts = await self.accepted()
            got = {"email": counts["mail"], "webhook": counts["hooks"]}.get(kind)
            if (sum(counts.values()) if got is None else got) >= goal:
                return
            await asyncio.sleep(0.05)
        self.timeline.notes.append(f"{share:.0%} of {kind} not reached: fault started anyway")

    def first_tenth(self) -> int:
        """A tenth of the messages of a kind (at least one): those a provider takes first."""
        return max(1, self.expected // 10)

    async def since(self, key: str, now: Callable[[], None]) -> float:
        """When the providers' fault ``key`` began (it was armed to begin by itself).

        If it has not begun when the patience runs out, ``now`` begins it (and a note says
        so). The start is written in the timeline.
        """
        deadline = time.monotonic() + self.patience
        while (began := (await asyncio.to_thread(self.peers.state))[key]) is None:
            if time.monotonic() > deadline:
                self.timeline.notes.append(f"{key}: not reached by the journeys, forced")
                await asyncio.to_thread(now)
                deadline = float("inf")
            await asyncio.sleep(0.05)
        self.timeline.started = began
        return began


async def calm(stage: Stage) -> None:
    """No fault: the control run, which must deliver everything exactly once."""


async def worker_kill(stage: Stage) -> None:
    """SIGKILL a worker at random moments while messages go out; a new one starts at once.

    The moments are spread out: kill ``i`` of ``n`` comes at a random share of the messages
    in the ``i``-th ``n``-th of 5–85 %, so every kill finds workers that are sending.
    """
    span = 0.8 / stage.kills
    for i in range(stage.kills):
        await stage.until("any", 0.05 + span * (i + stage.rng.random()))
        await asyncio.sleep(stage.rng.uniform(0, 0.3))
        victim = stage.rng.randrange(len(stage.workers.processes))
        stage.timeline.kills.append(time.time())
        stage.timeline.started = stage.timeline.started or stage.timeline.kills[-1]
        stage.workers.kill(victim)
        stage.timeline.ended = time.time()


async def temporal_kill(stage: Stage) -> None:
    """SIGKILL the Temporal server mid-journey; restart it at once on its state file."""
    await stage.until("any", stage.rng.uniform(0.1, 0.6))
    stage.timeline.started = time.time()
    stage.server.kill()
    stage.server.start()  # from this thread: the server must outlive the thread starting it
    stage.timeline.ended = time.time()


async def smtp_outage(stage: Stage) -> None:
    """The SMTP server stops listening for ``outage`` seconds, then comes back on its port.

    It goes down by itself after accepting a tenth of the emails, so the outage meets the
    rest however fast they go out.
    """
    await asyncio.to_thread(stage.peers.smtp_down, stage.first_tenth())
    started = await stage.since("smtp_down_since", stage.peers.smtp_down)
    await asyncio.sleep(max(0.0, started + stage.outage - time.time()))
    await asyncio.to_thread(stage.peers.smtp_up)
    stage.timeline.ended = time.time()


async def webhook_storm(stage: Stage) -> None:
    """A storm: 429 with ``Retry-After: 2`` for 60 % of ``outage``, then 500, then 200.

    It begins by itself after a tenth of the webhooks were accepted.
    """
    await asyncio.to_thread(stage.peers.refuse_hooks, 429, 2, stage.first_tenth())
    started = await stage.since("hooks_refusing_since", lambda: stage.peers.refuse_hooks(429, 2))
    await asyncio.sleep(max(0.0, started + 0.6 * stage.outage - time.time()))
    await asyncio.to_thread(stage.peers.refuse_hooks, 500)
    await asyncio.sleep(max(0.0, started + stage.outage - time.time()))
    await asyncio.to_thread(stage.peers.accept_hooks)
    stage.timeline.ended = time.time()


SCENARIOS: dict[str, tuple[Callable[[Stage], Awaitable[None]], str]] = {
    "calm": (calm, "any"),
    "worker-kill": (worker_kill, "any"),
    "temporal-kill": (temporal_kill, "any"),
    "smtp-outage": (smtp_outage, "email"),
    "webhook-storm": (webhook_storm, "webhook"),
}
"""Each scenario, and the kind of message whose first acceptance after the fault marks
recovery."""
