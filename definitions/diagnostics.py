"""Problems found in source files, located by line and column and printed with a caret."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Diagnostic", "closest", "describe_value", "listing", "shown"]

_SHOWN = 60
"""The most characters of a user's text quoted in a message."""
_LISTED = 20
"""The most names listed as the expected ones in a message."""
_LINE_SHOWN = 120
"""The most characters of a source line printed under a message."""


@dataclass(frozen=True)
class Diagnostic:
    """One problem in one file.

    Lines and columns count from 1, as editors show them.
    """

    file: str
    """Path of the file, as given to the loader."""
    line: int
    """Line of the problem (1-based); 0 when the problem is about the whole file."""
    column: int
    """Column of the problem (1-based)."""
    message: str
    """What is wrong, phrased as 'expected X, found Y' where that fits."""
    source_line: str = ""
    """The text of the offending line, for the caret display."""

    @property
    def location(self) -> str:
        """``file:line:col``, the form editors and terminals turn into links."""
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{self.column}"

    def format(self) -> str:
        """The message with its location, the source line and a caret under the problem."""
        head = f"{self.location}: {self.message}"
        if not self.source_line or self.line <= 0:
            return head
        gutter = str(self.line)
        line, column = _window(self.source_line, max(self.column, 1))
        caret = " " * (column - 1) + "^"
        return f"{head}\n  {gutter} | {line}\n  {' ' * len(gutter)} | {caret}"


def _window(line: str, column: int) -> tuple[str, int]:
    """A long source line cut to the part around ``column``, and the column within it."""
    if len(line) <= _LINE_SHOWN:
        return line, column
    start = max(0, min(column - 1 - _LINE_SHOWN // 2, len(line) - _LINE_SHOWN))
    cut = line[start : start + _LINE_SHOWN]
    if start > 0:
        cut, column = "…" + cut[1:], column - start
    if start + _LINE_SHOWN < len(line):
        cut = cut[:-1] + "…"
    return cut, column


def closest(word: str, choices: Iterable[str]) -> str:
    """A ``(did you mean 'x'?)`` suffix when a choice is close to ``word``, else ``''``."""
    options = list(choices)
    if not options or len(word) > 2 * max(len(o) for o in options):
        return ""  # nothing that long is a typo of a short name; and difflib is quadratic
    match = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def describe_value(value: object) -> str:
    """How a YAML value reads in an error message: ``'fax'``, ``a list``, ``nothing``."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return shown(value)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def shown(text: str) -> str:
    """``text`` quoted for a message, cut to a readable length (a value may be megabytes)."""
    quoted = repr(text[: _SHOWN + 1])
    if len(text) <= _SHOWN:
        return quoted
    return repr(text[:_SHOWN])[:-1] + "…" + quoted[-1] + f" ({len(text)} characters)"


def listing(names: Iterable[str], *, none: str = "none") -> str:
    """Names for "expected one of …", sorted, at most a screenful of them."""
    ordered = sorted(names)
    if not ordered:
        return none
    if len(ordered) <= _LISTED:
        return ", ".join(ordered)
    return ", ".join(ordered[:_LISTED]) + f", … ({len(ordered)} in all)"
