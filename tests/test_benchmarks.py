"""The benchmark harness runs (tiny sizes: this checks it works, not how fast)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO


def test_the_benchmarks_run_and_write_json(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--recipients",
            "6",
            "--people",
            "300",
            "--track-single",
            "20",
            "--track-batches",
            "2",
            "--json",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(out.read_text())
    assert data["limit_6"]["recipients"] == 6
    assert data["baseline_6"]["history_events_per_recipient"] > 10
    assert data["baseline_6"]["worker_peak_rss_mb"] > 10
    engine = data["engine_6"]
    assert engine["recipients"] == 6 and engine["history_events_per_recipient"] > 0
    assert engine["engine_over_limit"] > 0 and engine["engine_over_baseline"] > 0
    assert data["segments_sqlite"]["people"] == 300
    assert 0 < data["segments_sqlite"]["members"] < 300
    for store in ("track_sqlite", "track_postgresql"):
        assert data[store]["single_events_per_second"] > 0
        assert data[store]["batch_events_per_second"] > 0
        assert (
            data[store]["events_stored"]
            == data[store]["events_sent"] - data[store]["duplicates_sent"]
        )
    assert "rec/s" in result.stdout
