"""Profiles of the benchmark's processes: py-spy attached to a running process.

``py-spy record`` samples a process from outside (no change to the code it runs, every
thread), 100 times a second, and stops when the process exits. Its raw output (one line per
distinct stack) is turned into a text file a person reads: the functions that took the most
samples by their own code and with their callees, and the packages the time went to.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

__all__ = ["Sampler", "py_spy", "summarize", "top_packages"]

RATE = 100
"""Samples a second."""
_REPO = Path(__file__).resolve().parents[1]


def py_spy() -> str | None:
    """The py-spy executable (next to this Python's, else on PATH), or None."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Sampler:
    """py-spy recording one process until it exits.

    Args:
        pid: the process to sample.
        out: the text profile to write (the raw samples go beside it, ``.raw``).
        title: what the process is, for the profile's first line.

    Raises:
        RuntimeError: py-spy is not installed (``pip install py-spy``).

    """

    def __init__(self, pid: int, out: Path, title: str) -> None:
        executable = py_spy()
        if executable is None:
            raise RuntimeError("--profile needs py-spy: pip install py-spy")
        self.out, self.title = out, title
        self._raw = out.with_suffix(".raw")
        self._process = subprocess.Popen(
            [
                executable,
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(RATE),
                "--nonblocking",
                "--nolineno",
                "--format",
                "raw",
                "--output",
                str(self._raw),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def finish(self, timeout: float = 60) -> Path | None:
        """Wait for py-spy (its process has exited) and write the text profile; its path."""
        try:
            self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._process.terminate()
            self._process.wait()
        if not self._raw.exists():
            print(f"py-spy wrote no profile of {self.title}", file=sys.stderr)
            return None
        self.out.write_text(summarize(self._raw.read_text(), self.title))
        return self.out


def _package(frame: str) -> str:
    """What a frame's code belongs to: a package, ``stdlib <module>``, or a repo folder."""
    _, _, where = frame.rpartition(" (")
    path = where.rstrip(")")
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/lib/python3" in path:
        tail = path.split("/lib/python3", 1)[1].split("/", 2)
        return "stdlib " + (tail[1].removesuffix(".py") if len(tail) > 1 else "")
    candidate = Path(path)
    if candidate.is_absolute() and candidate.is_relative_to(_REPO):
        candidate = candidate.relative_to(_REPO)
    return candidate.parts[0].removesuffix(".py") if candidate.parts else path


def summarize(raw: str, title: str, top: int = 30) -> str:
    """A readable profile from py-spy's raw output (``frame;frame;… count`` per line).

    Args:
        raw: py-spy's ``--format raw`` output.
        title: what was sampled.
        top: how many functions to list in each table.

    """
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if not f.startswith(("thread (", "process "))]
        if not frames:
            continue
        samples += n
        own[frames[-1]] += n
        packages[_package(frames[-1])] += n
        for frame in set(frames):
            total[frame] += n
    lines = [
        f"{title}",
        f"py-spy, {RATE} samples/s, active threads only: {samples} samples "
        f"({samples / RATE:.1f} s of threads running or ready to run)",
        "A thread in C code (SQLite in aiosqlite's thread, a socket call) counts under the "
        "Python function that called it; on a busy machine a thread waiting for a CPU counts.",
        "",
        "own time by package (the code each sample was in):",
    ]
    lines += [f"  {100 * n / samples:5.1f} %  {name}" for name, n in packages.most_common(top)]
    lines += ["", "own time by function:"]
    lines += [f"  {100 * n / samples:5.1f} %  {name}" for name, n in own.most_common(top)]
    lines += ["", "total time by function (with what it calls):"]
    lines += [f"  {100 * n / samples:5.1f} %  {name}" for name, n in total.most_common(top)]
    return "\n".join(lines) + "\n" if samples else f"{title}\nno samples\n"


def top_packages(text: str, count: int = 3) -> list[str]:
    """The first ``count`` lines of a profile's package table, e.g. ``31.0 % sqlalchemy``."""
    lines = text.splitlines()
    try:
        start = lines.index("own time by package (the code each sample was in):") + 1
    except ValueError:
        return []
    return [" ".join(line.split()) for line in lines[start : start + count] if line.strip()]
