"""YAML loading that keeps where every key and value came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from definitions.diagnostics import Diagnostic

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
        lines = self.text.splitlines()
        source = lines[line].rstrip() if 0 <= line < len(lines) and spot else ""
        return Diagnostic(self.path, line + 1 if spot else 0, col + 1, message, source)

    def node(self, where: Located) -> Any:
        """The plain value at a path, or None when it does not exist."""
        value = self.data
        for part in where:
            try:
                value = value[part]
            except (KeyError, IndexError, TypeError):
                return None
        return value


def load_yaml(path: str | Path, text: str | None = None) -> tuple[SourceFile, list[Diagnostic]]:
    """Parse a YAML file into plain data with positions.

    Args:
        path: the file, read unless ``text`` is given; shown in diagnostics as given.
        text: the file's content, when already read.

    Returns:
        The source and the syntax problems found; with problems, ``data`` is None.

    """
    shown = str(path)
    if text is None:
        text = Path(path).read_text(encoding="utf-8")
    source = SourceFile(shown, text)
    yaml = YAML(typ="rt", pure=True)
    try:
        tree = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        message = f"invalid YAML: {problem}"
        if mark is None:
            return source, [Diagnostic(shown, 0, 0, message)]
        lines = text.splitlines()
        line = lines[mark.line].rstrip() if mark.line < len(lines) else ""
        return source, [Diagnostic(shown, mark.line + 1, mark.column + 1, message, line)]
    source._values[()] = (0, 0)
    source.data = _plain(tree, (), source)
    return source, []


def _plain(node: Any, where: Located, source: SourceFile) -> Any:
    if isinstance(node, CommentedMap):
        result: dict[Any, Any] = {}
        for key, value in node.items():
            child = (*where, str(key))
            source._keys[child] = tuple(node.lc.key(key))
            source._values[child] = tuple(node.lc.value(key))
            result[str(key)] = _plain(value, child, source)
        return result
    if isinstance(node, CommentedSeq):
        items = []
        for index, value in enumerate(node):
            child = (*where, index)
            source._values[child] = tuple(node.lc.item(index))
            items.append(_plain(value, child, source))
        return items
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node
