"""Problems found in source files, located by line and column and printed with a caret."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Diagnostic", "closest", "describe_value"]


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
        caret = " " * (max(self.column, 1) - 1) + "^"
        return f"{head}\n  {gutter} | {self.source_line}\n  {' ' * len(gutter)} | {caret}"


def closest(word: str, choices: Iterable[str]) -> str:
    """A ``(did you mean 'x'?)`` suffix when a choice is close to ``word``, else ``''``."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def describe_value(value: object) -> str:
    """How a YAML value reads in an error message: ``'fax'``, ``a list``, ``nothing``."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__
