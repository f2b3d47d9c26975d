"""Counting a run: what the providers accepted against what should have been sent.

Every recipient should get one email and one webhook. The providers' ledger says what each
accepted, and when; a message is **lost** when no provider accepted it, a **duplicate** for
each acceptance after its first. A duplicate is **inside the documented window** when it is
the same message (same id) and a worker was SIGKILLed between its previous acceptance and
this one — the worker died between the provider's acceptance and the ``sent`` row — and
outside it otherwise. (A message the worker wrote to the socket just before it died is
logged by the provider just after: a kill up to ``IN_FLIGHT`` seconds before the previous
acceptance counts too.) The message log is read too, as a cross-check: a lost message should
be recorded ``failed`` or ``queued``, never ``sent``; every accepted id should be in it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence
from itertools import pairwise
from typing import Any

from activities.channels.webhook import webhook_id
from benchmarks.faults.scenarios import Timeline
from journeys.store import MessageRecord

__all__ = ["tally"]

KINDS = ("email", "webhook")
EXAMPLES = 5
"""How many examples of each disagreement the results keep."""
IN_FLIGHT = 1.0
"""Seconds a message sent just before its sender was killed may take to be logged."""


def _kill_between(kills: Iterable[float], accepted: float, again: float) -> float | None:
    """The first kill that can have caused ``again``: between the two acceptances."""
    return min((k for k in kills if accepted - IN_FLIGHT <= k <= again), default=None)


def _nearest(kills: Iterable[float], moment: float) -> float | None:
    return min((k - moment for k in kills), key=abs, default=None)


def tally(
    people: Sequence[dict[str, str]],
    singles: Collection[str],
    accepted: Sequence[dict[str, Any]],
    log: Sequence[MessageRecord],
    timeline: Timeline,
    resume_kind: str,
) -> dict[str, Any]:
    """Lost and duplicate messages, the message log's view of them, and recovery times.

    Args:
        people: every recipient triggered (``id``, ``email``, ``plan``).
        singles: the ids of those triggered as runs of their own (the rest: the cohort).
        accepted: the providers' ledger (:class:`benchmarks.receivers.Accepted` as dicts).
        log: every row of the message log.
        timeline: what the fault did and when.
        resume_kind: the kind of message whose first acceptance after the fault marks
            that deliveries resumed (``email``, ``webhook`` or ``any``).

    """
    by_address = {p["email"]: p["id"] for p in people}
    plans = {p["id"]: p["plan"] for p in people}
    got: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for item in sorted(accepted, key=lambda a: a["at"]):
        rid = (
            by_address.get(item["recipient"], "") if item["kind"] == "email" else item["recipient"]
        )
        got[item["kind"], rid].append(item)
    rows: dict[tuple[str, str], list[MessageRecord]] = defaultdict(list)
    for row in log:
        rows[row.channel, row.recipient_id].append(row)
    known_keys = {row.id for row in log} | {webhook_id(row.id) for row in log}

    expected = [(kind, p["id"]) for p in people for kind in KINDS]
    lost = [pair for pair in expected if not got.get(pair)]
    wanted = set(expected)
    unattributed = sum(len(items) for pair, items in got.items() if pair not in wanted)
    inside, outside, flagged, gaps = 0, 0, 0, []
    duplicates: list[dict[str, Any]] = []
    for pair, items in got.items():
        for earlier, later in pairwise(items):
            kill = _kill_between(timeline.kills, earlier["at"], later["at"])
            same = earlier["key"] == later["key"]
            if same and kill is not None:
                inside += 1
                gaps.append(max(0.0, kill - earlier["at"]))
                flagged += any(
                    r.state == "sent" and r.detail.get("possible_duplicate")
                    for r in rows.get(pair, [])
                )
            else:
                outside += 1
            if len(duplicates) < 4 * EXAMPLES:
                duplicates.append(
                    {
                        "kind": pair[0],
                        "recipient": pair[1],
                        "key": later["key"],
                        "same_id": same,
                        "after_kill": kill is not None,
                        "seconds_apart": later["at"] - earlier["at"],
                        "nearest_kill_after_first": _nearest(timeline.kills, earlier["at"]),
                    }
                )

    def log_state(pair: tuple[str, str]) -> str:
        found = rows.get(pair, [])
        return ",".join(sorted(r.state for r in found)) or "missing"

    lost_states = Counter(log_state(pair) for pair in lost)
    delivered_not_sent = [
        {"kind": pair[0], "recipient": pair[1], "log": log_state(pair)}
        for pair in expected
        if got.get(pair) and log_state(pair) != "sent"
    ]
    unknown = [a for a in accepted if a["key"] not in known_keys]
    misrouted = [
        a
        for a in accepted
        if a["kind"] == "webhook"
        and a["path"] != ("/pro" if plans.get(a["recipient"]) == "pro" else "/free")
    ]
    return {
        "expected": len(expected),
        "delivered": len(expected) - len(lost),
        "accepted": len(accepted),
        "unattributed": unattributed,
        "lost": len(lost),
        "lost_by_kind": dict(Counter(kind for kind, _ in lost)),
        "lost_in_single_runs": sum(1 for _, rid in lost if rid in singles),
        "duplicates_inside_window": inside,
        "duplicates_outside_window": outside,
        "duplicates_flagged": flagged,
        "window_seconds": max(gaps) if gaps else None,
        "duplicate_examples": duplicates,
        "log": {
            "states": dict(Counter(row.state for row in log)),
            "queued": sum(1 for row in log if row.state == "queued"),
            "lost_recorded_as": dict(lost_states),
            "lost_but_recorded_sent": lost_states.get("sent", 0),
            "delivered_but_not_recorded_sent": len(delivered_not_sent),
            "delivered_not_sent_examples": delivered_not_sent[:EXAMPLES],
            "accepted_ids_not_in_log": len(unknown),
            "misrouted_webhooks": len(misrouted),
        },
        "recovery": _recovery(accepted, timeline, resume_kind),
    }


def _recovery(
    accepted: Sequence[dict[str, Any]], timeline: Timeline, kind: str
) -> dict[str, float | None]:
    """Seconds from the fault's end to the first acceptance after it, and to the last."""
    if timeline.ended is None:
        return {"resumed_seconds": None, "last_delivery_seconds": None}
    end = timeline.ended
    after = [a["at"] for a in accepted if a["at"] >= end and kind in ("any", a["kind"])]
    everything = [a["at"] for a in accepted if a["at"] >= end]
    return {
        "resumed_seconds": min(after) - end if after else None,
        "last_delivery_seconds": max(everything) - end if everything else None,
    }
