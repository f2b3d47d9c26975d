"""How the journeys command ends: documented exit codes, one clear line, never an abort."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from journeys.process import EXIT_FAILED, EXIT_UNAVAILABLE, EXIT_USAGE
from tests.helpers import REPO
from tests.test_cli import journeys

RUNS = 4
"""Runs of each command: before the fix, about half of them aborted with exit 134."""


@pytest.fixture(scope="module")
def dead_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound by us, never listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


COMMANDS = [
    ("trigger", "onboarding", "--to", "u1"),
    ("status", "trg_x"),
    ("cancel", "demo/u1"),
    ("track", "u1", "signed_up"),
    ("worker",),
    ("serve", "--port", "1"),  # never bound: the engine is checked before serving
]


@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_an_unreachable_engine_is_one_line_and_exit_3(
    command: tuple[str, ...], dead_port: int, tmp_path: Path
) -> None:
    env = {
        "JOURNEYS_TEMPORAL_ADDRESS": f"127.0.0.1:{dead_port}",
        "JOURNEYS_STORE_URL": f"sqlite:///{tmp_path}/store.db",
        "JOURNEYS_SERVER_TOKENS": "a-token",  # no warning about missing credentials
    }
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: journeys(*command, env=env), range(RUNS)))
    for result in results:
        assert result.returncode == EXIT_UNAVAILABLE, result.stderr
        assert result.stderr.splitlines() == [
            f"journeys: cannot reach Temporal at 127.0.0.1:{dead_port} (Connection refused); "
            "start one with `journeys dev`, or set [temporal] address"
        ]
        assert result.stdout == ""


def test_python_m_workers_ends_the_same_way(dead_port: int) -> None:
    for _ in range(RUNS):
        result = subprocess.run(
            [sys.executable, "-m", "workers"],
            capture_output=True,
            text=True,
            cwd=REPO,
            env={**os.environ, "JOURNEYS_TEMPORAL_ADDRESS": f"127.0.0.1:{dead_port}"},
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        assert result.returncode == EXIT_UNAVAILABLE, result.stderr
        assert len(result.stderr.splitlines()) == 1
        assert "cannot reach Temporal" in result.stderr


USAGE = [
    ("no command", (), "the following arguments are required: COMMAND"),
    ("unknown command", ("nosuch",), "invalid choice: 'nosuch'"),
    ("unknown option", ("validate", "--nosuch"), "unrecognized arguments: --nosuch"),
    ("no recipients", ("trigger", "onboarding"), "expected recipients: --to ID"),
    ("data not an object", ("track", "u1", "e", "--data", "[1]"), "--data: expected a JSON object"),
    ("data not JSON", ("track", "u1", "e", "--data", "{x"), "--data: expected JSON"),
    ("data out of range", ("track", "u1", "e", "--data", '{"n": 1e400}'), "--data.n: expected"),
    (
        "field without =",
        ("trigger", "x", "--to", "u1", "--field", "plan"),
        "NAME=TEXT or NAME:=JSON",
    ),
    ("field without name", ("trigger", "x", "--to", "u1", "--field", "=pro"), "a field name"),
    ("field id", ("trigger", "x", "--to", "u1", "--field", "id=u2"), "the recipient's id is --to"),
    ("field bad JSON", ("trigger", "x", "--to", "u1", "--field", "n:=NaN"), "--field n: expected"),
    (
        "field with NUL",
        ("trigger", "x", "--to", "u1", "--field", 'note:="a\\u0000b"'),
        "--field note: expected",
    ),
    ("topic", ("preferences", "u1", "--topic", "news"), "--topic expects NAME=on|off"),
    ("messages of nobody", ("messages",), "give --recipient ID and/or --run RUN"),
    ("limit", ("messages", "--recipient", "u", "--limit", "0"), "expected a whole number above 0"),
    ("half TLS", ("serve", "--certfile", "c.pem"), "give both --certfile and --keyfile"),
]


@pytest.mark.parametrize(("what", "args", "message"), USAGE, ids=[u[0] for u in USAGE])
def test_a_wrong_command_line_is_exit_2(
    what: str, args: tuple[str, ...], message: str, tmp_path: Path
) -> None:
    env = {"JOURNEYS_STORE_URL": f"sqlite:///{tmp_path}/store.db"}
    result = journeys(*args, env=env)
    assert result.returncode == EXIT_USAGE, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("usage: journeys")


def test_help_exits_0_and_states_the_exit_codes() -> None:
    result = journeys("--help")
    assert result.returncode == 0
    assert "3 Temporal or the store cannot be reached" in " ".join(result.stdout.split())


def test_a_missing_directory_says_where_it_looked_and_how_to_set_it(tmp_path: Path) -> None:
    for args in (("validate",), ("graph", "onboarding"), ("trigger", "onboarding", "--to", "u")):
        result = journeys(*args, cwd=tmp_path)
        assert result.returncode == EXIT_FAILED, result.stderr
        assert result.stderr.splitlines() == [
            f"journeys: no journeys directory at {tmp_path / 'journeys'} (from `directory` in "
            "journeys.toml); set `directory` in journeys.toml or JOURNEYS_DIRECTORY, or pass --dir"
        ]
    elsewhere = journeys("validate", "--dir", "nowhere", cwd=tmp_path)
    assert f"no journeys directory at {tmp_path / 'nowhere'} (from --dir)" in elsewhere.stderr


def test_config_is_taken_before_and_after_the_command(tmp_path: Path) -> None:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "note.yaml").write_text(
        "journey: note\nsteps:\n  - send: ping\n    channel: webhook\n    url: https://x.example\n"
    )
    config = tmp_path / "elsewhere.toml"
    config.write_text(f'directory = "{folder}"\n')
    for args in (("--config", str(config), "validate"), ("validate", "--config", str(config))):
        result = journeys(*args, cwd=REPO)
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"ok: 1 journey (note), 0 templates in {folder}\n"
    # After the command wins over before it, as the nearer option.
    both = journeys("--config", "missing.toml", "validate", "--config", str(config))
    assert both.returncode == 0, both.stderr
