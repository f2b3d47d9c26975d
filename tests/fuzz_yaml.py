"""Mutations of the example journeys, and what compiling one must give.

Used two ways:

- ``tests/test_definitions_fuzz.py`` draws mutations with Hypothesis (bounded in CI; more
  with ``JOURNEYS_FUZZ_EXAMPLES=5000 pytest -m fuzz``);
- ``python -m tests.fuzz_yaml generate DIR --files 5000`` writes a campaign of mutated
  journey directories, and ``python tests/fuzz_yaml.py check DIR`` compiles each in a
  forked child with a time and memory limit and counts the outcomes (run it with
  ``PYTHONPATH`` pointing at another checkout to measure that one).

A mutant replaces one file of a copy of the examples — a journey, ``segments.yaml`` or a
template — with bytes, lines or YAML structure changed: deletions, duplications, nesting,
aliases, tags, control characters, huge numbers, wrong types.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "journeys"
CASES = REPO / "tests" / "cases"

SEEDS: list[Path] = sorted(
    [
        *EXAMPLES.glob("*.yaml"),
        *(EXAMPLES / "templates").glob("*.yaml"),
        *(p for p in CASES.glob("*.yaml") if p.is_file()),
        *(CASES / "segment_limits").glob("*.yaml"),
        *(CASES / "templates").glob("*.yaml"),
    ]
)
"""Files mutants start from: the example journeys, segments and templates, and the cases."""

HOSTILE_VALUES: list[str] = [
    "!!python/tuple [1, 2]",
    "!!python/object/apply:os.system ['true']",
    "!!int x",
    "!!binary aGk=",
    "!custom x",
    "!!set {a, b}",
    ".nan",
    ".inf",
    "-.inf",
    "1e400",
    "9" * 5000,
    "-" + "9" * 4400,
    "0x" + "f" * 40,
    "[" * 100 + "]" * 100,
    "{a: " * 70 + "1" + "}" * 70,
    "*nowhere",
    "&loop [*loop]",
    '"\\0"',
    '"\\ud800"',
    '"\\x07"',
    "99999999999w",
    "0.0000001s",
    "1" + "0" * 400 + "s",
    "~",
    "[]",
    "{}",
    "true",
    "123",
    "- - -",
    "|",
    "'",
    '"',
    "? [a]",
    "{? {a: 1} : 2}",
    "x" * 3000,
]

HOSTILE_LINES: list[str] = [
    "%YAML 1.1",
    "---",
    "...",
    "<<: *nowhere",
    "<<: 1d",
    "<<: [1, 2]",
    "? [a]\n: 1",
    "x: &a [a, a, a, a, a, a, a, a, a]\n"
    + "".join(
        f"x{i}: &a{i} [" + ", ".join([f"*{'a' if i == 0 else f'a{i - 1}'}"] * 9) + "]\n"
        for i in range(8)
    ),
    "- " + "[" * 300 + "]" * 300,
    "  " * 40 + "deep: 1",
    "journey: " + "x" * 500,
    "steps: !!python/tuple []",
    "\t- wait: 1d",
]

HOSTILE_BYTES: list[bytes] = [
    b"\x00",
    b"\x07",
    b"\x1b[31m",
    b"\x7f",
    b"\xff\xfe",
    b"\xe9",
    b"\xc3",
    b"\xef\xbb\xbf",
    b"\r",
    b"\r\n",
    b"\xc2\x85",
    b"\xe2\x80\xa8",
    b"\t",
    b"&a ",
    b"*a ",
    b": ",
    b"- ",
    b"{",
    b"[",
    b"'",
    b'"',
    b"#",
    b"!",
    b"%",
    b"@",
    b"`",
]

ROLES = ("journey", "segments", "template")


class Draw(Protocol):
    """Where mutations get their choices: Hypothesis in the suite, a seeded RNG in campaigns."""

    def integer(self, low: int, high: int) -> int:
        """A whole number from ``low`` to ``high`` inclusive."""

    def choice(self, items: Sequence[T]) -> T:
        """One of ``items``."""


class RandomDraw:
    """Draws from a seeded :class:`random.Random`."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)

    def integer(self, low: int, high: int) -> int:
        return self.random.randint(low, high)

    def choice(self, items: Sequence[T]) -> T:
        return items[self.random.randrange(len(items))]


# -- mutations ---------------------------------------------------------------------------


def _span(data: bytes, draw: Draw) -> tuple[int, int]:
    start = draw.integer(0, len(data))
    return start, min(len(data), start + draw.integer(0, 64))


def _delete_bytes(data: bytes, draw: Draw) -> bytes:
    start, end = _span(data, draw)
    return data[:start] + data[end:]


def _duplicate_bytes(data: bytes, draw: Draw) -> bytes:
    start, end = _span(data, draw)
    return data[:end] + data[start:end] * draw.integer(1, 50) + data[end:]


def _insert_bytes(data: bytes, draw: Draw) -> bytes:
    at = draw.integer(0, len(data))
    return data[:at] + draw.choice(HOSTILE_BYTES) + data[at:]


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def _delete_line(data: bytes, draw: Draw) -> bytes:
    lines = _lines(data)
    del lines[draw.integer(0, len(lines) - 1)]
    return b"\n".join(lines)


def _duplicate_line(data: bytes, draw: Draw) -> bytes:
    lines = _lines(data)
    at = draw.integer(0, len(lines) - 1)
    lines[at:at] = [lines[at]] * draw.integer(1, 200)
    return b"\n".join(lines)


def _indent_line(data: bytes, draw: Draw) -> bytes:
    lines = _lines(data)
    at = draw.integer(0, len(lines) - 1)
    lines[at] = b" " * draw.integer(1, 12) + lines[at]
    return b"\n".join(lines)


def _swap_lines(data: bytes, draw: Draw) -> bytes:
    lines = _lines(data)
    a, b = draw.integer(0, len(lines) - 1), draw.integer(0, len(lines) - 1)
    lines[a], lines[b] = lines[b], lines[a]
    return b"\n".join(lines)


def _insert_line(data: bytes, draw: Draw) -> bytes:
    lines = _lines(data)
    at = draw.integer(0, len(lines))
    lines.insert(at, draw.choice(HOSTILE_LINES).encode())
    return b"\n".join(lines)


def _replace_value(data: bytes, draw: Draw) -> bytes:
    """Replace what follows a ``key:`` or ``- `` on some line with a hostile value."""
    lines = _lines(data)
    candidates = [
        i for i, line in enumerate(lines) if b": " in line or line.lstrip().startswith(b"- ")
    ]
    if not candidates:
        return data
    at = draw.choice(candidates)
    line = lines[at]
    cut = line.index(b": ") + 2 if b": " in line else line.index(b"- ") + 2
    lines[at] = line[:cut] + draw.choice(HOSTILE_VALUES).encode()
    return b"\n".join(lines)


def _nest(data: bytes, draw: Draw) -> bytes:
    """Wrap what follows a ``key:`` in many levels of flow lists or mappings."""
    lines = _lines(data)
    candidates = [i for i, line in enumerate(lines) if b": " in line]
    if not candidates:
        return data
    at = draw.choice(candidates)
    line = lines[at]
    cut = line.index(b": ") + 2
    depth = draw.integer(1, 120)
    opener, closer = draw.choice([(b"[", b"]"), (b"{k: ", b"}")])
    lines[at] = line[:cut] + opener * depth + line[cut:] + closer * depth
    return b"\n".join(lines)


def _alias_everything(data: bytes, draw: Draw) -> bytes:
    """Anchor a value and refer to it from many places."""
    lines = _lines(data)
    candidates = [i for i, line in enumerate(lines) if b": " in line]
    if len(candidates) < 2:
        return data
    first = draw.choice(candidates)
    line = lines[first]
    cut = line.index(b": ") + 2
    lines[first] = line[:cut] + b"&x " + line[cut:]
    for _ in range(draw.integer(1, 5)):
        other = draw.choice(candidates)
        if other > first:
            cut = lines[other].index(b": ") + 2
            lines[other] = lines[other][:cut] + b"*x"
    return b"\n".join(lines)


def _tree(data: bytes, draw: Draw) -> bytes:
    """Load with PyYAML, put a wrong or huge value somewhere, dump again."""
    import yaml

    try:
        tree = yaml.safe_load(data)
    except (yaml.YAMLError, ValueError, RecursionError):
        return data
    if not isinstance(tree, dict | list):
        return data
    deep: Any = "leaf"
    for _ in range(draw.integer(1, 80)):
        deep = draw.choice([[deep], {"k": deep}])
    replacements: list[Any] = [
        None,
        True,
        0,
        -1,
        2**64,
        10**30,
        1.5,
        float("nan"),
        float("inf"),
        "",
        "x" * 10_000,
        [],
        {},
        deep,
        {"wait": "1d"},
        [{"branch": "b", "if": {"segment": "nowhere"}, "then": [{"wait": "1d"}]}],
        {"segment": "pro_users"},
        {"not": {"not": {"not": {"event": "e"}}}},
    ]
    node: Any = tree
    parents: list[tuple[Any, Any]] = []
    for _ in range(draw.integer(0, 6)):
        keys = (
            list(node)
            if isinstance(node, dict)
            else list(range(len(node)))
            if isinstance(node, list)
            else []
        )
        if not keys:
            break
        key = draw.choice(keys)
        parents.append((node, key))
        node = node[key]
    if not parents:
        return data
    container, key = parents[-1]
    action = draw.integer(0, 2)
    if action == 0:
        container[key] = draw.choice(replacements)
    elif action == 1 and isinstance(container, dict):
        del container[key]
    elif isinstance(container, list):
        container.extend([container[key]] * draw.integer(1, 30))
    else:
        container[key] = [container[key]] * draw.integer(2, 30)
    try:
        return yaml.safe_dump(tree, allow_unicode=True, sort_keys=False).encode()
    except (yaml.YAMLError, RecursionError):
        return data


MUTATIONS: list[Callable[[bytes, Draw], bytes]] = [
    _delete_bytes,
    _duplicate_bytes,
    _insert_bytes,
    _delete_line,
    _duplicate_line,
    _indent_line,
    _swap_lines,
    _insert_line,
    _replace_value,
    _nest,
    _alias_everything,
    _tree,
]


def mutant(draw: Draw) -> tuple[str, Path, bytes]:
    """A role (journey, segments or template), the seed it came from and its bytes."""
    seed = draw.choice(SEEDS)
    role = draw.choice(ROLES)
    data = seed.read_bytes()
    for _ in range(draw.integer(1, 4)):
        data = draw.choice(MUTATIONS)(data, draw)
    return role, seed, data


def build(directory: Path, role: str, seed: Path, data: bytes) -> Path:
    """A copy of the examples in ``directory`` with the mutant in the place of its role."""
    shutil.copytree(EXAMPLES / "templates", directory / "templates")
    for path in EXAMPLES.glob("*.yaml"):
        shutil.copy(path, directory / path.name)
    if role == "journey":
        target = directory / seed.name if seed.name != "segments.yaml" else directory / "x.yaml"
    elif role == "segments":
        target = directory / "segments.yaml"
    else:
        target = directory / "templates" / "welcome.yaml"
    target.write_bytes(data)
    return target


# -- what a compile must give ------------------------------------------------------------


def defects(directory: Path) -> list[str]:
    """Everything wrong with how journeys handles ``directory``: [] when every compile
    gives a plan or a DefinitionError whose problems all have a file, line and column."""
    from definitions.compiler import Library
    from definitions.errors import DefinitionError

    found: list[str] = []

    def located(error: DefinitionError, what: str) -> None:
        if not error.diagnostics:
            found.append(f"{what}: DefinitionError without problems")
        for problem in error.diagnostics:
            if not (problem.file and problem.line >= 1 and problem.column >= 1):
                found.append(f"{what}: unlocated: {problem.format()[:200]}")

    library = Library(directory)
    for name in library.names():
        try:
            library.compile(name)
        except DefinitionError as error:
            located(error, f"compile {name}")
    try:
        library.segments()
    except DefinitionError as error:
        located(error, "segments")
    for problem in library.check():
        if not (problem.file and problem.line >= 1 and problem.column >= 1):
            found.append(f"check: unlocated: {problem.format()[:200]}")
    return found


# -- campaigns ---------------------------------------------------------------------------


def generate(out: Path, count: int, seed: int) -> None:
    """Write ``count`` mutated journey directories under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        role, source, data = mutant(RandomDraw(seed * 1_000_003 + index))
        case = out / f"{index:05d}"
        case.mkdir()
        build(case, role, source, data)
        (case.parent / f"{index:05d}.json").write_text(
            json.dumps({"role": role, "seed": source.name})
        )


def _check_one(case: Path, memory: int, seconds: int) -> tuple[str, str, float, int]:
    """Compile one directory in a forked child: (outcome, detail, seconds, peak RSS in KiB)."""
    read, write = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: limits, compile, report one line
        os.close(read)
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        signal.alarm(seconds)
        try:
            problems = defects(case)
            line = ("unlocated", problems[0]) if problems else ("ok", "")
        except MemoryError:
            line = ("memory", "MemoryError")
        except BaseException as exc:
            line = ("crash", f"{type(exc).__name__}: {str(exc)[:160]}")
        os.write(write, json.dumps(line).encode())
        os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.monotonic() - started
    if not chunks:
        killed = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
        outcome = "timeout" if killed == signal.SIGALRM else f"killed by signal {killed}"
        return outcome, "", elapsed, usage.ru_maxrss
    outcome, detail = json.loads(b"".join(chunks))
    return outcome, detail, elapsed, usage.ru_maxrss


def check(out: Path, memory_mb: int, seconds: int) -> None:
    """Compile every case under ``out`` and print the outcomes as JSON."""
    import definitions.compiler  # noqa: F401 - imported once, before forking

    with open("/proc/self/status") as status:
        base = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
    memory = base * 1024 + memory_mb * 1024 * 1024
    outcomes: Counter[str] = Counter()
    details: Counter[str] = Counter()
    slowest, biggest = 0.0, 0
    cases = sorted(p for p in out.iterdir() if p.is_dir())
    for case in cases:
        outcome, detail, elapsed, rss = _check_one(case, memory, seconds)
        outcomes[outcome] += 1
        if outcome != "ok":
            details[
                f"{outcome}: {detail.split(':')[0] if outcome == 'crash' else detail[:80]}"
            ] += 1
            (out / f"{case.name}.outcome").write_text(f"{outcome}\n{detail}\n")
        slowest, biggest = max(slowest, elapsed), max(biggest, rss)
    print(
        json.dumps(
            {
                "cases": len(cases),
                "outcomes": dict(outcomes),
                "slowest_s": round(slowest, 2),
                "peak_rss_mib": round(biggest / 1024),
                "defects": details.most_common(40),
            },
            indent=2,
        )
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write mutated journey directories")
    gen.add_argument("out", type=Path)
    gen.add_argument("--files", type=int, default=5000)
    gen.add_argument("--seed", type=int, default=9)
    run = sub.add_parser("check", help="compile each one in a child with limits")
    run.add_argument("out", type=Path)
    run.add_argument("--memory-mb", type=int, default=2048, help="beyond the parent's size")
    run.add_argument("--seconds", type=int, default=60)
    args = parser.parse_args(argv)
    if args.command == "generate":
        generate(args.out, args.files, args.seed)
    else:
        check(args.out, args.memory_mb, args.seconds)


if __name__ == "__main__":
    if str(REPO) not in sys.path and not os.environ.get("PYTHONPATH"):
        sys.path.insert(0, str(REPO))
    main()
