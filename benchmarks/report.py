"""The benchmark's report: a Markdown table of each figure beside its target and the last run's.

One row per figure: what was measured, issue 12's target for it (if any), the figure from
the results file being replaced, the figure now, and notes; where a target is missed, by
how much, and (with ``--profile``) the packages the workers' time went to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Row", "Target", "markdown", "rows"]


@dataclass(frozen=True)
class Target:
    """A bound a figure should meet: at least or at most ``value``."""

    op: Literal[">=", "<="]
    value: float

    def met(self, now: float) -> bool:
        """Whether ``now`` meets the target."""
        return now >= self.value if self.op == ">=" else now <= self.value

    def shortfall(self, now: float) -> str:
        """How far ``now`` is from the target, in per cent of the target."""
        if self.op == ">=":
            return f"missed by {100 * (self.value - now) / self.value:.0f} %"
        return f"over by {100 * (now - self.value) / self.value:.0f} %"

    def __str__(self) -> str:
        return f"{'≥' if self.op == '>=' else '≤'} {self.value:,g}"


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    benchmark: str
    now: float | None
    unit: str = ""
    """How a figure is shown: a format with one ``{}`` (e.g. ``{:.0f} rec/s``)."""
    previous: float | None = None
    target: Target | None = None
    notes: list[str] = field(default_factory=list)

    def missed_with(self, notes: list[str]) -> Row:
        """The row with ``notes`` added when it misses its target (else itself)."""
        if self.target is None or self.now is None or self.target.met(self.now):
            return self
        return Row(
            self.benchmark, self.now, self.unit, self.previous, self.target, self.notes + notes
        )

    def cells(self) -> list[str]:
        """benchmark, target, previous, now, notes."""

        def shown(value: float | None) -> str:
            return "–" if value is None else self.unit.format(value)

        notes = list(self.notes)
        if self.target is not None and self.now is not None:
            if self.target.met(self.now):
                notes.insert(0, "met")
            else:
                notes.insert(0, f"**{self.target.shortfall(self.now)}**")
        target = "" if self.target is None else str(self.target)
        return [self.benchmark, target, shown(self.previous), shown(self.now), "; ".join(notes)]


_KNOWN = {
    "recipients",
    "workers",
    "seconds",
    "trigger_seconds",
    "recipients_per_second",
    "history_events_per_recipient",
    "worker_peak_rss_mb",
    "engine_over_limit",
    "engine_over_raw",
    "engine_over_baseline",
    "baseline_recipients",
    "profile",
    "profile_top",
    "single_events_per_second",
    "batch_events_per_second",
    "batch_size",
    "status",
    "client_cpu_ms_per_recipient",
    "peers_cpu_ms_per_recipient",
    "accounted",
    "recipients_accounted",
    "problems",
    "duplicate_message_keys",
    "messages_to_strangers",
    "client_rss_mb_before_trigger",
    "client_peak_rss_mb_during_trigger",
    "seconds_until_closed",
}


def _accounting(value: dict[str, Any]) -> list[str]:
    """What the engine run's accounting found (benchmarks/accounting.py), if it ran."""
    if "recipients_accounted" not in value:
        return []
    notes = [
        f"accounted for {value['recipients_accounted']:,} of {value['recipients']:,} "
        f"(email and webhook each accepted once, run closed, both rows `sent`)"
    ]
    for key, label in (
        ("duplicate_message_keys", "messages accepted twice"),
        ("messages_to_strangers", "messages to unknown recipients"),
    ):
        if value.get(key):
            notes.append(f"**{value[key]:,} {label}**")
    if value.get("problems"):
        notes.append(f"**problems: {value['problems']}**")
    if "client_peak_rss_mb_during_trigger" in value:
        notes.append(
            f"client RSS {value['client_rss_mb_before_trigger']:.0f} → "
            f"{value['client_peak_rss_mb_during_trigger']:.0f} MB during trigger()"
        )
    return notes


def _extras(value: dict[str, Any]) -> list[str]:
    """Keys this report does not know (a helper's additions), shown as they are."""
    shown = []
    for key, item in value.items():
        if key in _KNOWN:
            continue
        if isinstance(item, float):
            shown.append(f"{key} {item:,.3g}")
        elif isinstance(item, (int, str, bool)):
            shown.append(f"{key} {item:,}" if isinstance(item, int) else f"{key} {item}")
    return shown


def _kind(key: str) -> str:
    return key.split("_", 1)[0]


def _counterpart(previous: dict[str, Any], key: str, value: dict[str, Any]) -> dict[str, Any]:
    """The previous run's entry for the same figure (same kind, size and worker count)."""
    if key in ("track", "track_sqlite"):
        found = previous.get("track_sqlite") or previous.get("track")
        return found if isinstance(found, dict) else {}
    if _kind(key) in ("limit", "raw", "baseline", "engine"):
        for other_key, other in previous.items():
            if (
                isinstance(other, dict)
                and _kind(other_key) == _kind(key)
                and other.get("recipients") == value.get("recipients")
                and other.get("workers", 1) == value.get("workers", 1)
            ):
                return other
        return {}
    found = previous.get(key)
    return found if isinstance(found, dict) else {}


def _engine_rows(value: dict[str, Any], before: dict[str, Any], bound: list[str]) -> list[Row]:
    n, workers = value["recipients"], value.get("workers", 1)
    who = f"{n:,} recipients, {workers} worker{'s' if workers > 1 else ''}"
    notes = [
        f"{value['history_events_per_recipient']:.3f} history events/recipient",
        f"worker peak RSS {value['worker_peak_rss_mb']:.0f} MB",
        f"trigger() {value['trigger_seconds']:.1f} s",
    ]
    if "engine_over_raw" in value:
        notes.append(f"engine/raw {value['engine_over_raw']:.2f}")
    if "engine_over_baseline" in value:
        notes.append(
            f"engine/baseline {value['engine_over_baseline']:.1f} "
            f"(baseline at {value['baseline_recipients']:,})"
        )
    notes += _accounting(value) + _extras(value)
    if value.get("profile"):
        notes.append("profile: " + ", ".join(f"`{p}`" for p in value["profile"]))
    result = [
        Row(
            f"engine (cohorts), {who}",
            value["recipients_per_second"],
            "{:.0f} rec/s",
            before.get("recipients_per_second"),
            notes=notes,
        )
    ]
    if "engine_over_limit" in value:
        target = None
        if n == 10_000:
            target = Target(">=", 0.8 if workers == 1 else 0.9)
        missed = target is not None and not target.met(value["engine_over_limit"])
        result.append(
            Row(
                f"engine/limit, {who}",
                value["engine_over_limit"],
                "{:.2f}",
                before.get("engine_over_limit"),
                target,
                bound if missed else [],
            )
        )
    if n >= 100_000:
        for label, name, unit, target in (
            ("worker peak RSS", "worker_peak_rss_mb", "{:.0f} MB", Target("<=", 400)),
            (
                "history events per recipient",
                "history_events_per_recipient",
                "{:.3f}",
                Target("<=", 0.2),
            ),
        ):
            missed = not target.met(value[name])
            result.append(
                Row(
                    f"{label}, {who}",
                    value[name],
                    unit,
                    before.get(name),
                    target,
                    bound if missed else [],
                )
            )
    return result


def _track_rows(key: str, value: dict[str, Any], before: dict[str, Any]) -> list[Row]:
    backend = "PostgreSQL" if key.endswith("postgresql") else "SQLite"
    bound = (
        [f"bound (server profile): {', '.join(value['profile_top'])}"]
        if value.get("profile_top")
        else []
    )
    single: list[str] = []
    batch: list[str] = []
    if "single_cpu_ms_per_event" in value:
        single.append(_cpu_per_event(value["single_cpu_ms_per_event"]))
        batch.append(_cpu_per_event(value["batch_cpu_ms_per_event"]))
    elif "single_server_cpu_ms_per_event" in value:
        single.append(f"server CPU {value['single_server_cpu_ms_per_event']:.2f} ms/event")
        batch.append(f"server CPU {value['batch_server_cpu_ms_per_event']:.2f} ms/event")
    if "connections" in value:
        single.append(f"{value['connections']} keep-alive connections")
        batch.append(f"{value.get('batch_connections', 4)} connections")
    if "events_sent" in value:
        single.append(
            f"{value['events_sent']:,} events in all ({value['duplicates_sent']:,} repeated "
            f"ids), {value['events_stored']:,} stored; {value['signals_reached']:,} signals "
            f"reached a waiting run, {value['started']:,} journeys started, "
            f"{value['failed']:,} failed"
        )
    if "loadgen_healthz_requests_per_second" in value:
        single.append(
            f"load generator's ceiling {value['loadgen_healthz_requests_per_second']:,.0f} "
            "requests/s (`/healthz`)"
        )
    if "healthz_server_cpu_ms_per_request" in value:
        single.append(
            f"the HTTP stack alone: server CPU {value['healthz_server_cpu_ms_per_request']:.2f} "
            "ms per `/healthz` request"
        )
    if value.get("profile"):
        single.append("profile: " + ", ".join(f"`{p}`" for p in value["profile"]))
    return [
        Row(
            f"track, one event per request, {backend}",
            value["single_events_per_second"],
            "{:.0f} ev/s",
            before.get("single_events_per_second"),
            Target(">=", 1000),
            single,
        ).missed_with(bound),
        Row(
            f"track, batches of {value.get('batch_size', 100)}, {backend}",
            value["batch_events_per_second"],
            "{:.0f} ev/s",
            before.get("batch_events_per_second"),
            Target(">=", 5000),
            batch,
        ).missed_with(bound),
    ]


def _cpu_per_event(spent: dict[str, float]) -> str:
    """Where the machine's CPU went per event (:class:`benchmarks.track.Meter`)."""
    parts = [
        f"{name} {ms:.2f}"
        for name, ms in spent.items()
        if name != "machine_busy_share" and (ms >= 0.005 or name == "server")
    ]
    total = sum(ms for name, ms in spent.items() if name != "machine_busy_share")
    return (
        f"CPU ms/event: {', '.join(parts)} ({total:.2f} in all; the machine "
        f"{spent.get('machine_busy_share', 0):.0%} busy)"
    )


def _rate_row(label: str, note: str) -> Callable[[dict[str, Any], dict[str, Any]], Row]:
    def build(value: dict[str, Any], before: dict[str, Any]) -> Row:
        n, workers = value["recipients"], value.get("workers")
        who = f"{n:,} recipients" + (
            f", {workers} worker{'s' if workers > 1 else ''}" if workers else ""
        )
        unit = "{:.1f} rec/s" if value["recipients_per_second"] < 20 else "{:.0f} rec/s"
        notes = [note] + (
            [
                f"{value['history_events_per_recipient']:.0f} history events/recipient",
                f"worker peak RSS {value['worker_peak_rss_mb']:.0f} MB",
            ]
            if "history_events_per_recipient" in value
            else []
        )
        if "client_cpu_ms_per_recipient" in value:
            notes.append(
                f"CPU per recipient: sender {value['client_cpu_ms_per_recipient']:.2f} ms, "
                f"peers {value['peers_cpu_ms_per_recipient']:.2f} ms"
            )
        return Row(
            f"{label}, {who}",
            value["recipients_per_second"],
            unit,
            before.get("recipients_per_second"),
            notes=notes + _extras(value),
        )

    return build


_RATES = {
    "limit": _rate_row(
        "limit: channel code, no Temporal", "an email and a webhook each, 32 at a time"
    ),
    "raw": _rate_row(
        "raw: aiosmtplib + httpx, no channel code", "the limit's messages, connections kept"
    ),
    "baseline": _rate_row("baseline: one workflow per recipient", "per-recipient runs"),
}


def rows(results: dict[str, Any], previous: dict[str, Any] | None = None) -> list[Row]:
    """The table's rows for a run's results, with the previous run's figures beside them."""
    previous = previous or {}
    found: list[Row] = []
    for key, value in results.items():
        if not isinstance(value, dict) or key == "machine":
            continue
        before = _counterpart(previous, key, value)
        if "status" in value:
            found.append(Row(key, None, notes=[str(value["status"])]))
        elif _kind(key) in _RATES:
            row = _RATES[_kind(key)](value, before)
            raw = results.get(f"raw_{value['recipients']}")
            if _kind(key) == "limit" and raw:
                ratio = value["recipients_per_second"] / raw["recipients_per_second"]
                row.notes.append(f"limit/raw {ratio:.2f}")
            found.append(row)
        elif _kind(key) == "engine":
            bound = [f"bound (worker profile): {', '.join(value.get('profile_top', []))}"]
            found += _engine_rows(value, before, bound if value.get("profile_top") else [])
        elif key == "track" or key.startswith("track_"):
            found += _track_rows(key, value, before)
        elif key.startswith("segments"):
            backend = "PostgreSQL" if key.endswith("postgresql") else "SQLite"
            found.append(
                Row(
                    f"segment query, {value['people']:,} people, {backend}",
                    value["first_page_ms"],
                    "{:.0f} ms",
                    before.get("first_page_ms"),
                    notes=[
                        "first page",
                        f"count {value['count_ms']:.0f} ms",
                        f"{value['members']:,} members",
                    ],
                )
            )
    return found


def markdown(results: dict[str, Any], previous: dict[str, Any] | None = None) -> str:
    """The report as a Markdown table (with a line saying when and where it was measured)."""
    machine = results.get("machine", {})
    then = (previous or {}).get("machine", {}).get("when", "")
    lines = [
        f"Measured {machine.get('when', '')[:16].replace('T', ' ')} UTC on "
        f"{machine.get('cpus', '?')} CPUs, Python {machine.get('python', '?')}"
        + (f"; previous: {then[:16].replace('T', ' ')} UTC" if then else "")
        + ".",
        "",
        "| benchmark | target | previous | now | notes |",
        "|---|---|---|---|---|",
    ]
    for row in rows(results, previous):
        cells = [cell.replace("|", "\\|") for cell in row.cells()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
