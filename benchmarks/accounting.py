"""Accounting for every recipient of a benchmark's trigger: at the peers and in the store.

A run of the reference journey is only as good as what it delivered: each recipient's
email and webhook accepted exactly once by the peers (the peers' ledger names each
message's recipient), each recipient's run closed and both messages ``sent`` in the store.
:func:`wait_closed` waits for the store cheaply (a count) while the last runs close; the
ledger and the store's rows are read once, by :func:`account`, at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, select

from benchmarks.peers import RemotePeers
from journeys.store import Store
from journeys.store import tables as t

__all__ = ["account", "closed_runs", "process_rss_mb", "reset_peak_rss", "wait_closed"]


def recipient_of_address(address: str) -> str:
    """The reference recipient an email address belongs to (``r12@…`` → ``r000012``)."""
    local = parseaddr(address)[1].split("@", 1)[0]
    return f"r{int(local[1:]):06d}" if local[1:].isdigit() else address


async def closed_runs(store: Store, trigger_id: str) -> tuple[int, int]:
    """(runs of the trigger, of which closed): one count query."""
    async with store.db.engine.connect() as conn:
        row = (
            await conn.execute(
                select(func.count(), func.coalesce(func.sum(t.runs.c.closed), 0)).where(
                    t.runs.c.trigger_id == trigger_id
                )
            )
        ).one()
    return int(row[0]), int(row[1])


async def wait_closed(store: Store, trigger_id: str, count: int, timeout: float) -> bool:
    """Wait until ``count`` runs of the trigger are closed; False if ``timeout`` passed."""
    deadline = time.monotonic() + timeout
    while True:
        runs, closed = await closed_runs(store, trigger_id)
        if runs >= count and closed >= runs:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(1.0)


async def account(
    store: Store, peers: RemotePeers, trigger_id: str, recipients: list[str], since: int
) -> dict[str, Any]:
    """Every recipient's messages at the peers and their run and messages in the store.

    Args:
        store: the engine's store.
        peers: the benchmark's providers.
        trigger_id: the trigger whose recipients are accounted for.
        recipients: the recipient ids the trigger named.
        since: how many messages the peers had accepted before the trigger (the ledger is
            in order: those before belong to earlier runs).

    Returns:
        ``accounted`` (recipients with everything right / recipients) and what was wrong,
        counted by kind.

    """
    ledger = (await asyncio.to_thread(peers.ledger))["accepted"][since:]
    emails: Counter[str] = Counter()
    hooks: Counter[str] = Counter()
    keys: Counter[str] = Counter()
    for item in ledger:
        keys[f"{item['kind']}:{item['key']}"] += 1
        if item["kind"] == "email":
            emails[recipient_of_address(item["recipient"])] += 1
        else:
            hooks[item["recipient"]] += 1
    del ledger
    closed: dict[str, int] = {}
    sent: Counter[str] = Counter()
    async with store.db.engine.connect() as conn:
        for rid, is_closed in await conn.execute(
            select(t.runs.c.recipient_id, t.runs.c.closed).where(t.runs.c.trigger_id == trigger_id)
        ):
            closed[rid] = closed.get(rid, 0) + int(is_closed)
        joined = t.messages.join(
            t.runs,
            and_(
                t.messages.c.workflow_id == t.runs.c.workflow_id,
                t.messages.c.run_id == t.runs.c.run_id,
            ),
        )
        for rid, n in await conn.execute(
            select(t.messages.c.recipient_id, func.count())
            .select_from(joined)
            .where(t.runs.c.trigger_id == trigger_id, t.messages.c.state == "sent")
            .group_by(t.messages.c.recipient_id)
        ):
            sent[rid] = int(n)
    wrong: Counter[str] = Counter()
    good = 0
    for rid in recipients:
        problems = [
            name
            for name, ok in (
                ("email_not_once", emails.get(rid, 0) == 1),
                ("webhook_not_once", hooks.get(rid, 0) == 1),
                ("run_not_closed", closed.get(rid, 0) == 1),
                ("messages_not_sent", sent.get(rid, 0) == 2),
            )
            if not ok
        ]
        wrong.update(problems)
        good += not problems
    named = set(recipients)
    strangers = sum(n for rid, n in (emails + hooks).items() if rid not in named)
    return {
        "accounted": good / len(recipients) if recipients else 1.0,
        "recipients_accounted": good,
        "problems": dict(wrong),
        "duplicate_message_keys": sum(n - 1 for n in keys.values() if n > 1),
        "messages_to_strangers": strangers,
    }


def reset_peak_rss() -> None:
    """Start this process's peak RSS (``VmHWM``) afresh, where Linux allows it."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def process_rss_mb(pid: int | str = "self") -> tuple[float, float]:
    """(current RSS, peak RSS) of a process in MB, from ``/proc``; zeros elsewhere."""
    now = peak = 0.0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                now = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    except OSError:
        pass
    return now, peak
