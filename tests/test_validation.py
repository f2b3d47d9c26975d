"""Wrong journey files beside the diagnostics they must give (tests/cases/NAME.yaml/.expected)."""

from __future__ import annotations

from pathlib import Path

import pytest

from definitions.compiler import Library
from definitions.errors import DefinitionError

CASES = Path(__file__).parent / "cases"
NAMES = sorted(p.stem for p in CASES.glob("*.yaml") if p.stem != "segments")


def shown(problem_file: str, name: str) -> str:
    path = Path(problem_file)
    if path.name == f"{name}.yaml" and path.parent.name == "cases":
        return ""
    return str(path.resolve().relative_to(CASES.resolve())) + ":"


@pytest.mark.parametrize("name", NAMES)
def test_wrong_journey_gives_its_diagnostics(name: str) -> None:
    expected = (CASES / f"{name}.expected").read_text().splitlines()
    with pytest.raises(DefinitionError) as caught:
        Library(CASES).compile(name)
    got = [
        f"{shown(d.file, name)}{d.line}:{d.column}: {d.message}" for d in caught.value.diagnostics
    ]
    assert got == expected


def test_every_case_has_expectations() -> None:
    assert {p.stem for p in CASES.glob("*.expected")} == set(NAMES)


def test_diagnostic_shows_the_line_and_a_caret() -> None:
    with pytest.raises(DefinitionError) as caught:
        Library(CASES).compile("unknown_channel")
    text = caught.value.diagnostics[0].format()
    assert text.splitlines()[1:] == ["  4 |     channel: fax", "    |              ^"]
    assert str(caught.value).startswith("1 problem in journey definitions:\n")


def test_check_reports_every_file_at_once() -> None:
    problems = Library(CASES).check()
    files = {Path(p.file).stem for p in problems}
    assert set(NAMES) - {"template_does_not_parse"} <= files
    assert "broken" in files  # reported for the template file itself


def test_examples_in_the_repo_are_valid() -> None:
    library = Library(Path(__file__).parent.parent / "journeys")
    assert library.check() == []
    assert {"onboarding", "demo"} <= set(library.names())
