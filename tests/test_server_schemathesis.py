"""Schemathesis against the running HTTP API, from its own OpenAPI document.

The real tool, as a user runs it (``schemathesis run …/openapi.json`` with the repository's
``schemathesis.toml``): seeded and deterministic, a bounded number of examples per
operation. Every failure it has found is kept as a row of tests/test_server_input.py.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path
from xml.etree import ElementTree

from tests.helpers import REPO, Engine
from tests.test_server import API_KEY, APP_KEY, SITE_ID, TOKEN, serve


def schemathesis() -> str:
    """The ``schemathesis`` command of this environment."""
    return str(Path(sys.executable).with_name("schemathesis"))


async def test_schemathesis_finds_nothing(engine: Engine, tmp_path: Path) -> None:
    async for api in serve(engine, tmp_path, rate_limit=100_000.0):
        environment = {
            **os.environ,
            "JOURNEYS_SERVER_SITE_ID": SITE_ID,
            "JOURNEYS_SERVER_API_KEY": API_KEY,
            "JOURNEYS_SERVER_TOKENS": TOKEN,
            "JOURNEYS_SERVER_APP_API_KEY": APP_KEY,
            "NO_COLOR": "1",
        }
        process = await asyncio.create_subprocess_exec(
            schemathesis(),
            "--config-file",
            str(REPO / "schemathesis.toml"),
            "run",
            f"{api.url}/openapi.json",
            "--tls-verify",
            api.ca,
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path / "report"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=environment,
            cwd=tmp_path,
        )
        output, _ = await asyncio.wait_for(process.communicate(), timeout=600)
        text = output.decode(errors="replace")
        assert process.returncode == 0, text
        async with api.http() as anonymous:
            spec = (await anonymous.get("/openapi.json")).json()
    operations = sum(len(item) for item in spec["paths"].values())
    [report] = (tmp_path / "report").glob("junit*.xml")
    suite = ElementTree.parse(report).getroot()
    cases = suite.findall(".//testcase")
    assert len(cases) == operations, text  # every operation was tested
    assert [c.get("name") for c in cases if len(c)] == [], text  # none failed or erred
    assert (
        re.search(r"(\d+) generated", text)
        and int(re.search(r"(\d+) generated", text)[1]) > 20 * operations
    )
