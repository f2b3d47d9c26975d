"""YAML loading that keeps where every key and value came from."""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml.error import MarkedYAMLError, YAMLError

from definitions.diagnostics import Diagnostic
from definitions.limits import MAX_FILE_BYTES
from definitions.yaml_tree import TreeProblem, build_tree

__all__ = ["Located", "SourceFile", "load_yaml"]

Located = tuple[str | int, ...]
"""A path into a YAML document: mapping keys and list indexes from the root."""


@dataclass
class SourceFile:
    """A parsed YAML file: its plain data and the position of each node in it."""

    path: str
    text: str
    data: Any = None
    _values: dict[Located, tuple[int, int]] = field(default_factory=dict)
    _keys: dict[Located, tuple[int, int]] = field(default_factory=dict)
    _split: list[str] | None = field(default=None, repr=False)

    def diagnostic(self, where: Located, message: str, *, at_key: bool = False) -> Diagnostic:
        """A diagnostic at the node ``where`` (at its key when ``at_key`` and it has one).

        A path that does not exist (a missing key) falls back to its closest ancestor.
        """
        path = tuple(where)
        while True:
            spot = (self._keys.get(path) if at_key else None) or self._values.get(path)
            if spot is not None or not path:
                break
            path = path[:-1]
            at_key = True
        line, col = spot if spot is not None else (0, 0)
        lines = self._lines()
        source = lines[line].rstrip() if 0 <= line < len(lines) and spot else ""
        return Diagnostic(self.path, line + 1 if spot else 0, col + 1, message, source)

    def _lines(self) -> list[str]:
        if self._split is None:
            self._split = _BREAK.split(self.text)
        return self._split

    def at(self, spot: tuple[int, int], message: str) -> Diagnostic:
        """A diagnostic at a 0-based (line, column) of the text."""
        line, column = spot
        lines = self._lines()
        source = lines[line].rstrip() if 0 <= line < len(lines) else ""
        return Diagnostic(self.path, line + 1, column + 1, message, source)

    def node(self, where: Located) -> Any:  # noqa: ANN401  (YAML data: any shape, checked by the caller)
        """The plain value at a path, or None when it does not exist."""
        value = self.data
        for part in where:
            try:
                value = value[part]
            except (KeyError, IndexError, TypeError):
                return None
        return value


def load_yaml(path: str | Path, text: str | None = None) -> tuple[SourceFile, list[Diagnostic]]:
    """Parse a YAML file into plain data with positions, within the language's budgets.

    Whatever the file holds — bytes that are not UTF-8, control characters, a directory
    named ``x.yaml``, an alias bomb — the result is data or located problems, found in
    time and memory bounded by :mod:`definitions.limits`.

    Args:
        path: the file, read unless ``text`` is given; shown in diagnostics as given.
        text: the file's content, when already read.

    Returns:
        The source and the problems found; with problems, ``data`` is None.

    """
    shown = str(path)
    if text is None:
        raw = _read(Path(path))
        if isinstance(raw, str):
            return SourceFile(shown, ""), [Diagnostic(shown, 1, 1, raw)]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            readable = SourceFile(shown, raw.decode("utf-8", "replace"))
            index = len(raw[: exc.start].decode("utf-8"))
            message = f"expected UTF-8 text, found the byte 0x{raw[exc.start]:02x}"
            return readable, [readable.at(_position(readable.text, index), message)]
    source = SourceFile(shown, text)
    unprintable = _unprintable(text)
    if unprintable is not None:
        return source, [source.at(unprintable[0], unprintable[1])]
    try:
        tree = build_tree(text)
    except TreeProblem as problem:
        found = [*problem.earlier, (problem.at, problem.message)]
        return source, [source.at(at, message) for at, message in found]
    except YAMLError as exc:
        return source, [_syntax_problem(source, exc)]
    if tree.problems:
        return source, [source.at(at, message) for at, message in tree.problems]
    source._values, source._keys = tree.values, tree.keys
    source._values[()] = (0, 0)
    source.data = tree.data
    return source, []


def _read(path: Path) -> bytes | str:
    """The bytes of a regular file of at most MAX_FILE_BYTES, or what is wrong with it."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return "expected a readable file, found a broken link"
    except OSError as exc:
        return f"expected a readable file, found an error: {exc.strerror or exc}"
    if stat.S_ISDIR(status.st_mode):
        return "expected a YAML file, found a directory"
    if not stat.S_ISREG(status.st_mode):
        return "expected a YAML file, found a special file (a pipe, socket or device)"
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return f"expected a readable file, found an error: {exc.strerror or exc}"
    if len(raw) > MAX_FILE_BYTES:
        return f"expected a file of at most {MAX_FILE_BYTES} bytes, found {status.st_size}"
    return raw


_BREAK = re.compile("\r\n|\r|\n")
"""Line breaks as the YAML parser counts them (not NEL or U+2028, unlike splitlines)."""


def _position(text: str, index: int) -> tuple[int, int]:
    """The 0-based (line, column) of ``text[index]``, counting lines as the parser does."""
    lines = _BREAK.split(text[:index])
    return (len(lines) - 1, len(lines[-1]))


# YAML 1.2's printable characters (c-printable); everything else may not appear raw.
_UNPRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)


def _unprintable(text: str) -> tuple[tuple[int, int], str] | None:
    """The position of the first character YAML forbids, and a message about it."""
    found = _UNPRINTABLE.search(text)
    if found is None:
        return None
    char = found.group()
    name = "NUL" if char == "\x00" else "a control character"
    message = f"expected printable text, found {name} (U+{ord(char):04X})"
    if char != "\x00" and ord(char) < 0x20:
        message += "; write it as an escape in a double-quoted string"
    return _position(text, found.start()), message


def _syntax_problem(source: SourceFile, exc: YAMLError) -> Diagnostic:
    mark = None
    problem = str(exc)
    if isinstance(exc, MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
    if mark is None:
        return Diagnostic(source.path, 1, 1, f"invalid YAML: {problem}")
    return source.at((mark.line, mark.column), f"invalid YAML: {problem}")
