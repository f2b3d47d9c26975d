"""``python -m benchmarks.faults``: put journeys through faults and count every message.

Each scenario runs on each store (SQLite, and a scratch PostgreSQL database) with a fresh
stack — a Temporal dev server keeping its state in a file, worker processes, an SMTP server
and a webhook receiver in a process of their own — while a cohort trigger and single runs
(triggered one by one over ``--outage`` seconds) go through the reference journey (email →
wait 2s → branch → webhook):

- **calm** — no fault (the control).
- **worker-kill** — a worker is SIGKILLed at random moments while messages go out, and
  restarted.
- **temporal-kill** — the Temporal server is SIGKILLed mid-journey and restarted on its
  state file.
- **smtp-outage** — the SMTP server stops listening for ``--outage`` seconds, then comes
  back on its port.
- **webhook-storm** — the webhook receiver answers 429 (``Retry-After: 2``) for 60 % of
  ``--outage``, then 500 for the rest.

The providers log every message they accept, by its id, so duplicates are seen. The table
says per scenario and store: messages expected, delivered, lost; duplicates inside the
documented window (a worker killed between the provider's acceptance and the ``sent`` row)
and outside it; runs stuck (not ended ``--settle`` seconds after the fault); message-log rows
left ``queued``; and the recovery: seconds from the fault's end until deliveries resumed and
until every run had ended. The message log is cross-checked (a lost message must not be
recorded ``sent``). Exits 1 when a message was lost, duplicated outside the window, or a run
stuck.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.faults.run import Options, run_scenario
from benchmarks.faults.scenarios import SCENARIOS

DEFAULT_SCENARIOS = "calm,worker-kill,temporal-kill,smtp-outage,webhook-storm"
SMALL = Options(recipients=60, singles=6, workers=1, kills=2)
"""``--small``: what the test suite runs — each fault scenario once, the stores in turn,
two runs at a time, with 25 s outages."""
SMALL_SCENARIOS = "worker-kill,temporal-kill,smtp-outage,webhook-storm"
SMALL_PARALLEL = 2
NUMBERS: tuple[tuple[str, type, str], ...] = (
    ("recipients", int, "recipients of the cohort trigger"),
    ("singles", int, "recipients triggered as runs of their own"),
    ("workers", int, "worker processes"),
    ("outage", float, "seconds a provider is down or storming"),
    ("kills", int, "SIGKILLs of a worker in worker-kill"),
    ("settle", float, "seconds after the fault by which every run must have ended"),
    ("seed", int, "seed of the random moments"),
)
"""The numeric options, each overriding the field of :class:`Options` of its name."""


def failures(row: dict[str, Any]) -> list[str]:
    """What makes a row fail: lost, duplicated outside the window, stuck."""
    found = []
    if row["lost"]:
        found.append(f"{row['lost']} lost")
    if row["duplicates_outside_window"]:
        found.append(f"{row['duplicates_outside_window']} duplicates outside the window")
    if row["stuck"]:
        found.append(f"{row['stuck']} runs stuck")
    return found


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _done(row: dict[str, Any]) -> str:
    """Seconds from the fault's end until every run had ended; ``during`` if they already had."""
    return "during" if row["done_during_fault"] else _seconds(row["done_seconds"])


def table(rows: list[dict[str, Any]]) -> str:
    """The results, a line per scenario and store, then the cross-checks that disagree."""
    head = (
        f"{'scenario':<14} {'store':<10} {'expected':>8} {'delivered':>9} {'lost':>5} "
        f"{'dup in':>6} {'dup out':>7} {'stuck':>5} {'queued':>6} {'resumed s':>9} "
        f"{'done s':>7}"
    )
    lines = [head, "-" * len(head)]
    notes = []
    for r in rows:
        lines.append(
            f"{r['scenario']:<14} {r['backend']:<10} {r['expected']:>8} {r['delivered']:>9} "
            f"{r['lost']:>5} {r['duplicates_inside_window']:>6} "
            f"{r['duplicates_outside_window']:>7} {r['stuck']:>5} {r['log']['queued']:>6} "
            f"{_seconds(r['recovery']['resumed_seconds']):>9} {_done(r):>7}"
        )
        where = f"{r['scenario']} on {r['backend']}"
        log = r["log"]
        if r["lost"]:
            notes.append(
                f"{where}: lost {r['lost_by_kind']} ({r['lost_in_single_runs']} in single "
                f"runs); the message log records them as {log['lost_recorded_as']}"
            )
        if r["window_seconds"] is not None:
            notes.append(
                f"{where}: {r['duplicates_inside_window']} duplicates inside the window, "
                f"up to {r['window_seconds']:.2f} s from acceptance to the kill; "
                f"{r['duplicates_flagged']} of them marked possible_duplicate in the log"
            )
        for key, what in (
            ("lost_but_recorded_sent", "lost yet recorded sent"),
            ("delivered_but_not_recorded_sent", "delivered yet not recorded sent"),
            ("accepted_ids_not_in_log", "accepted with an id the log does not have"),
            ("misrouted_webhooks", "webhooks on the wrong branch"),
        ):
            if log[key]:
                notes.append(f"{where}: {log[key]} {what}")
        if r["unattributed"]:
            notes.append(f"{where}: {r['unattributed']} accepted for no recipient of the run")
        notes += [f"{where}: {note}" for note in r["fault"]["notes"]]
    return "\n".join(lines + (["", *notes] if notes else []))


def plan(scenarios: list[str], backends: list[str], small: bool) -> list[tuple[str, str]]:
    """The runs: every scenario on every store; with ``small``, each once, the stores in turn."""
    if small:
        return [(name, backends[i % len(backends)]) for i, name in enumerate(scenarios)]
    return [(name, backend) for name in scenarios for backend in backends]


async def main(
    runs: list[tuple[str, str]], options: Options, parallel: int, keep: Path | None
) -> list[dict[str, Any]]:
    """The runs, ``parallel`` at a time, each in a folder of its own (kept in ``keep``)."""
    gate = asyncio.Semaphore(parallel)
    with tempfile.TemporaryDirectory(prefix="journeys-faults-") as tmp:
        root = keep or Path(tmp)

        async def one(name: str, backend: str) -> dict[str, Any]:
            folder = root / f"{name}-{backend}"
            async with gate:
                print(f"{name} on {backend}…", file=sys.stderr, flush=True)
                try:
                    return await run_scenario(name, backend, options, folder)
                except BaseException:
                    for log in ("worker.log", "temporal.log"):
                        if (folder / log).exists():
                            tail = (folder / log).read_text(errors="replace")[-3000:]
                            print(f"--- {name} on {backend}: {log} ---\n{tail}", file=sys.stderr)
                    raise

        return list(await asyncio.gather(*(one(name, backend) for name, backend in runs)))


def _names(known: list[str]) -> Any:
    def parse(text: str) -> list[str]:
        names = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in names if n not in known]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"expected some of {', '.join(known)}, found {', '.join(unknown) or 'none'}"
            )
        return names

    return parse


def cli(argv: list[str] | None = None) -> int:
    """Parse the options, run, print the table; 1 when anything was lost, duplicated or stuck."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.faults",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--scenarios",
        type=_names(list(SCENARIOS)),
        help=f"comma-separated (default {DEFAULT_SCENARIOS})",
    )
    parser.add_argument(
        "--backends",
        type=_names(["sqlite", "postgresql"]),
        default=["sqlite", "postgresql"],
        help="comma-separated stores (default sqlite,postgresql)",
    )
    default = Options()
    for key, kind, what in NUMBERS:
        parser.add_argument(
            f"--{key}", type=kind, help=f"{what} (default {getattr(default, key):g})"
        )
    parser.add_argument(
        "--small",
        action="store_true",
        help=f"the suite's configuration: {SMALL.recipients} recipients in the cohort, "
        f"{SMALL.singles} single runs, {SMALL.workers} worker, {SMALL.kills} kills; each "
        f"scenario once (default {SMALL_SCENARIOS}), the stores in turn, {SMALL_PARALLEL} "
        "runs at a time (other options still apply)",
    )
    parser.add_argument(
        "--parallel",
        type=int,
        help="scenario runs at once, each on a stack of its own (default 1; --small: "
        f"{SMALL_PARALLEL}); figures are measured with 1",
    )
    parser.add_argument("--json", help="write the results here")
    parser.add_argument(
        "--keep", type=Path, help="keep each run's folder (worker and Temporal logs) here"
    )
    args = parser.parse_args(argv)
    args.parallel = args.parallel or (SMALL_PARALLEL if args.small else 1)
    if not args.scenarios:
        args.scenarios = (SMALL_SCENARIOS if args.small else DEFAULT_SCENARIOS).split(",")
    base = SMALL if args.small else default
    chosen = {key: getattr(args, key) for key, _, _ in NUMBERS if getattr(args, key) is not None}
    options = Options(**{**base.__dict__, **chosen})
    runs = plan(args.scenarios, args.backends, args.small)
    rows = asyncio.run(main(runs, options, args.parallel, args.keep))
    if args.json:
        results = {
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "when": datetime.now(UTC).isoformat(),
            },
            "options": options.__dict__,
            "results": rows,
        }
        Path(args.json).write_text(json.dumps(results, indent=2))
    print(table(rows))
    failed = [
        f"{r['scenario']} on {r['backend']}: {', '.join(failures(r))}" for r in rows if failures(r)
    ]
    if failed:
        print("\nFAILED\n" + "\n".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(cli())
