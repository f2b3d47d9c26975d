"""Wrong journey files beside the diagnostics they must give (tests/cases/NAME.yaml/.expected)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType

from definitions.compiler import Library
from definitions.errors import DefinitionError
from definitions.limits import MAX_DURATION, MAX_FILE_BYTES, MAX_PLAN_BYTES
from tests.helpers import Engine, eventually

CASES = Path(__file__).parent / "cases"
SEGMENT_LIMITS = CASES / "segment_limits"  # a segments.yaml of its own: long chains, fan-out
NAMES = sorted(p.stem for p in CASES.glob("*.yaml") if p.stem != "segments")
ALL_CASES = [
    (directory, name)
    for directory in (CASES, SEGMENT_LIMITS)
    for name in sorted(p.stem for p in directory.glob("*.yaml") if p.stem != "segments")
]


def shown(problem_file: str, name: str, directory: Path = CASES) -> str:
    path = Path(problem_file)
    if path.name == f"{name}.yaml" and path.parent.resolve() == directory.resolve():
        return ""
    return str(path.resolve().relative_to(directory.resolve())) + ":"


@pytest.mark.parametrize(("directory", "name"), ALL_CASES, ids=[n for _, n in ALL_CASES])
def test_wrong_journey_gives_its_diagnostics(directory: Path, name: str) -> None:
    expected = (directory / f"{name}.expected").read_text().splitlines()
    with pytest.raises(DefinitionError) as caught:
        Library(directory).compile(name)
    got = [
        f"{shown(d.file, name, directory)}{d.line}:{d.column}: {d.message}"
        for d in caught.value.diagnostics
    ]
    assert got == expected


def test_every_case_has_expectations() -> None:
    for directory in (CASES, SEGMENT_LIMITS):
        names = {p.stem for p in directory.glob("*.yaml") if p.stem != "segments"}
        assert {p.stem for p in directory.glob("*.expected")} == names


def test_diagnostic_shows_the_line_and_a_caret() -> None:
    with pytest.raises(DefinitionError) as caught:
        Library(CASES).compile("unknown_channel")
    text = caught.value.diagnostics[0].format()
    assert text.splitlines()[1:] == ["  4 |     channel: fax", "    |              ^"]
    assert str(caught.value).startswith("1 problem in journey definitions:\n")


def test_check_reports_every_file_at_once() -> None:
    problems = Library(CASES).check()
    files = {Path(p.file).stem for p in problems}
    assert set(NAMES) - {"template_does_not_parse", "webhook_body_domain"} <= files
    assert "broken" in files  # reported for the template file itself


def test_examples_in_the_repo_are_valid() -> None:
    library = Library(Path(__file__).parent.parent / "journeys")
    assert library.check() == []
    assert {"onboarding", "demo"} <= set(library.names())


@pytest.mark.parametrize(("directory", "name"), ALL_CASES, ids=[n for _, n in ALL_CASES])
def test_every_problem_is_located(directory: Path, name: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        Library(directory).compile(name)
    for problem in caught.value.diagnostics:
        assert problem.file and problem.line >= 1 and problem.column >= 1, problem


def journeys_dir(tmp_path: Path, **files: str | bytes) -> Library:
    """A journeys directory holding ``files`` (name → content; ``templates__x`` for templates)."""
    for name, content in files.items():
        path = tmp_path / (name.replace("__", "/") + ".yaml")
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return Library(tmp_path)


def problems_of(library: Library, name: str) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        library.compile(name)
    return [
        f"{Path(d.file).name}:{d.line}:{d.column}: {d.message}" for d in caught.value.diagnostics
    ]


def test_a_file_over_the_size_limit_is_not_read(tmp_path: Path) -> None:
    big = "journey: big\nsteps:\n  - wait: 1d\n" + "#" * MAX_FILE_BYTES + "\n"
    library = journeys_dir(tmp_path, big=big)
    assert problems_of(library, "big") == [
        f"big.yaml:1:1: expected a file of at most {MAX_FILE_BYTES} bytes, found {len(big)}"
    ]


def test_a_plan_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    steps = "".join(
        f"  - send: s{i}\n    channel: webhook\n    url: https://x.example\n    template: t{i}\n"
        for i in range(5)
    )
    body = "x" * 250_000  # each body within the value domain's 256 KiB; five of them are not
    templates = {f"templates__t{i}": f'webhook:\n  body: "{body}"\n' for i in range(5)}
    library = journeys_dir(tmp_path, big="journey: big\nsteps:\n" + steps, **templates)
    [problem] = problems_of(library, "big")
    assert problem.startswith(
        f"big.yaml:1:10: expected a compiled journey of at most {MAX_PLAN_BYTES}"
    )


def test_special_files_named_like_journeys(tmp_path: Path) -> None:
    (tmp_path / "gone.yaml").symlink_to(tmp_path / "nowhere.yaml")
    (tmp_path / "loop.yaml").symlink_to(tmp_path / "loop.yaml")
    os.mkfifo(tmp_path / "pipe.yaml")  # opening it would block forever
    library = Library(tmp_path)
    assert problems_of(library, "gone") == [
        "gone.yaml:1:1: expected a readable file, found a broken link"
    ]
    [loop] = problems_of(library, "loop")
    assert loop.startswith("loop.yaml:1:1: expected a readable file, found an error: ")
    assert problems_of(library, "pipe") == [
        "pipe.yaml:1:1: expected a YAML file, found a special file (a pipe, socket or device)"
    ]


def test_long_values_are_cut_in_messages(tmp_path: Path) -> None:
    value = "y" * 1_000_000
    library = journeys_dir(tmp_path, long=f"journey: long\nsteps:\n  - wait: {value}\n")
    [problem] = problems_of(library, "long")
    assert len(problem) < 300
    assert problem.endswith("…' (1000000 characters)")
    with pytest.raises(DefinitionError) as caught:
        library.compile("long")
    assert len(str(caught.value)) < 600  # the source line is shown around the column


def test_merged_steps_compile_like_written_ones(tmp_path: Path) -> None:
    library = journeys_dir(
        tmp_path,
        merged="""
journey: merged
steps:
  - &ping {send: first, channel: webhook, url: "https://x.example/a"}
  - <<: *ping
    send: second
  - {<<: [*ping], send: third, url: "https://x.example/b"}
""",
    )
    plan = library.compile("merged")
    assert [plan.steps[s].url for s in plan.sequences["main"]] == [
        "https://x.example/a",
        "https://x.example/a",
        "https://x.example/b",
    ]


def test_the_largest_integers_and_durations_are_accepted(tmp_path: Path) -> None:
    library = journeys_dir(
        tmp_path,
        edge=f"""
journey: edge
broadcast_id: {2**63 - 1}
entry: {{at_most_once_per: {MAX_DURATION.days}d}}
steps:
  - wait: {MAX_DURATION.days}d
  - wait: 0.001s
""",
    )
    plan = library.compile("edge")
    assert plan.broadcast_id == 2**63 - 1
    assert plan.entry_interval == MAX_DURATION.total_seconds()


async def test_the_longest_durations_run_on_temporal(engine: Engine) -> None:
    """What validation accepts, Temporal runs: a wait_for and a wait of 100 years start
    their timers, and ``within`` and ``exit_when`` are evaluated, with no failed task."""
    days = MAX_DURATION.days
    engine.write(
        "century",
        f"""
journey: century
exit_when: {{event: bought, within: {days}d}}
steps:
  - wait_for: answer
    event: answered
    timeout: {days}d
  - wait: {days}d
""",
    )
    handle = await engine.client.trigger("century", [{"id": "c1"}])
    [run] = handle.runs
    await engine.until_at(run.run_id, "answer")
    await engine.client.track("c1", "answered")
    await engine.until_at(run.run_id, f"wait_{days}d")
    workflow_id = "century/c1"
    timers = await eventually(
        lambda: engine.pending_timers(workflow_id, run.run_id),
        lambda found: len(found) == 1,
        what="the 100-year timer",
    )
    fires_in = timers[0].timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
    assert fires_in == MAX_DURATION
    events = await engine.history_events(workflow_id, run.run_id)
    failed = [e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
    assert failed == []
    await engine.client.cancel(run.run_id)


def test_check_reports_segments_no_journey_uses(tmp_path: Path) -> None:
    library = journeys_dir(
        tmp_path,
        segments="segments:\n  a: {all: [{segment: b}]}\n  b: {not: {segment: a}}\n  ok: {event: e}\n",
    )
    found = [f"{Path(d.file).name}:{d.line}:{d.column}: {d.message}" for d in library.check()]
    assert found == [
        "segments.yaml:2:3: segment 'a' refers to itself through a -> b -> a",
        "segments.yaml:3:3: segment 'a' refers to itself through a -> b -> a",
    ]
    with pytest.raises(DefinitionError):
        library.segments()
