"""``python -m benchmarks.writes``: concurrent profile writes, on SQLite and PostgreSQL.

``writers`` tasks each merge an attribute of their own into a profile at the same time
(``store.profiles.upsert``, what ``identify`` writes), ``rounds`` times over:

- **one person** — every writer on the same profile (the worst case: one hot row);
- **own person** — each writer on a profile of its own.

Prints writes per second, this process's CPU time per write (the database server's is
not counted), how many of the written attributes the profiles kept, and how
many writes failed. PostgreSQL runs on a scratch database made for it and dropped after
(``JOURNEYS_TEST_POSTGRES`` names the server, as for the tests).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.__main__ import POSTGRES
from journeys.store import Store

__all__ = ["cli", "concurrent_writes"]


async def concurrent_writes(url: str, writers: int, rounds: int) -> dict[str, Any]:
    """Run both cases on the store at ``url``; returns their figures."""
    store = await Store.open(url)
    results: dict[str, Any] = {}
    try:
        for case in ("one person", "own person"):
            errors: list[str] = []
            tag = secrets.token_hex(3)

            def person(i: int, case: str = case, tag: str = tag) -> str:
                return f"w-{tag}" if case == "one person" else f"w-{tag}-{i}"

            async def write(
                i: int, r: int, person: Any = person, errors: list[str] = errors
            ) -> None:
                try:
                    await store.profiles.upsert([(person(i), {f"a{r}_{i}": r})])
                except Exception as exc:  # counted: what this measures is whether writes fail
                    errors.append(type(exc).__name__)

            began, cpu = time.perf_counter(), time.process_time()
            for r in range(rounds):
                await asyncio.gather(*(write(i, r) for i in range(writers)))
            elapsed = time.perf_counter() - began
            cpu = time.process_time() - cpu
            kept = 0
            for i in {person(i) for i in range(writers)}:
                profile = await store.profiles.get(i) or {}
                kept += sum(1 for key in profile if key.startswith("a"))
            results[case] = {
                "writes_per_s": writers * rounds / elapsed,
                "cpu_ms_per_write": cpu * 1000 / (writers * rounds),
                "kept": kept,
                "written": writers * rounds,
                "errors": len(errors),
                "error_kinds": sorted(set(errors)),
            }
    finally:
        await store.close()
    return results


async def _on_scratch_postgres(writers: int, rounds: int) -> dict[str, Any]:
    import asyncpg

    name = f"journeys_writes_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(POSTGRES)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = f"{POSTGRES.rsplit('/', 1)[0]}/{name}"
            return await concurrent_writes(url, writers, rounds)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def _main(writers: int, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        sqlite = await concurrent_writes(f"sqlite:///{Path(folder)}/store.db", writers, rounds)
    return {"sqlite": sqlite, "postgresql": await _on_scratch_postgres(writers, rounds)}


def cli(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.writes", description=__doc__)
    parser.add_argument("--writers", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args(argv)
    results = asyncio.run(_main(args.writers, args.rounds))
    print(f"{args.writers} concurrent writers x {args.rounds} rounds")
    print(
        f"{'backend':<11} {'case':<11} {'writes/s':>9} {'CPU ms/write':>13} "
        f"{'kept':>11} {'errors':>7}"
    )
    for backend, cases in results.items():
        for case, r in cases.items():
            kept = f"{r['kept']}/{r['written']}"
            kinds = ", ".join(r["error_kinds"])
            print(
                f"{backend:<11} {case:<11} {r['writes_per_s']:>9.0f} "
                f"{r['cpu_ms_per_write']:>13.2f} {kept:>11} "
                f"{r['errors']:>7} {kinds}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(cli())
