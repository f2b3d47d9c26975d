"""A mutation fuzzer of the example journeys: compiling never crashes, hangs or blows up.

Each example replaces one file of a copy of the examples (a journey, ``segments.yaml`` or
a template) with a mutant of an example or a test case (``tests/fuzz_yaml.py``), then
compiles every journey, resolves the segments and checks the directory. Each must give a
plan or a :class:`DefinitionError` whose problems all have a file, a line and a column,
within a memory budget; Hypothesis' per-example deadline catches a compile that takes
seconds instead of milliseconds.

The suite runs a bounded number of examples; run more with
``JOURNEYS_FUZZ_EXAMPLES=5000 pytest -m fuzz tests/test_definitions_fuzz.py``.
"""

from __future__ import annotations

import os
import tempfile
import tracemalloc
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz_yaml import build, defects, mutant

T = TypeVar("T")

MEMORY_BUDGET = 96 * 1024 * 1024
"""Peak Python allocations allowed for compiling one mutant (files are under 1 MiB)."""

LONG_RUN = int(os.environ.get("JOURNEYS_FUZZ_EXAMPLES", "0"))

FUZZ_SETTINGS = settings(
    deadline=timedelta(seconds=10),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


class HypothesisDraw:
    """The fuzzer's choices, drawn by Hypothesis (so failures shrink and replay)."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data

    def integer(self, low: int, high: int) -> int:
        return self.data.draw(st.integers(low, high))

    def choice(self, items: Sequence[T]) -> T:
        return self.data.draw(st.sampled_from(items))


def compile_a_mutant(data: st.DataObject) -> None:
    role, seed, content = mutant(HypothesisDraw(data))
    with tempfile.TemporaryDirectory() as scratch:
        build(Path(scratch), role, seed, content)
        tracemalloc.start()
        try:
            found = defects(Path(scratch))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert found == [], f"{role} from {seed.name}: {found}"
    assert peak < MEMORY_BUDGET, f"{role} from {seed.name}: {peak} bytes at the peak"


@settings(FUZZ_SETTINGS, max_examples=60)
@given(st.data())
def test_mutants_compile_or_give_located_problems(data: st.DataObject) -> None:
    compile_a_mutant(data)


@pytest.mark.fuzz
@pytest.mark.skipif(not LONG_RUN, reason="set JOURNEYS_FUZZ_EXAMPLES to run the long fuzz")
@settings(FUZZ_SETTINGS, max_examples=max(LONG_RUN, 1))
@given(st.data())
def test_many_mutants_compile_or_give_located_problems(data: st.DataObject) -> None:
    compile_a_mutant(data)
