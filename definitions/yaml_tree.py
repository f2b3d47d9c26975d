"""Plain data from a YAML event stream, with positions, within the language's budgets.

ruamel's composer and constructors recurse once per nesting level, expand aliases without
limit and build whatever a tag names. This reads the parser's events instead, in one loop
with an explicit stack, and builds only JSON-like values: mappings with text keys, lists,
text, numbers, booleans and null. On the way it checks:

- nesting (:data:`~definitions.limits.MAX_NESTING`) and the number of values once aliases
  are expanded (:data:`~definitions.limits.MAX_VALUES`), before building anything bigger;
- tags: only YAML's core ones (``!!str``, ``!!int``, ``!!float``, ``!!bool``, ``!!null``,
  ``!!map``, ``!!seq``);
- keys: scalars only, each once; ``<<`` merges mappings (``<<: *defaults``);
- aliases: to an anchor defined above and already complete;
- every scalar is in the value domain of :mod:`definitions.values` (finite numbers,
  integers that fit in 64 bits, text without NUL or lone surrogates).

Positions are 0-based (line, column) pairs, for :class:`~definitions.source.SourceFile`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    DocumentStartEvent,
    Event,
    MappingStartEvent,
    ScalarEvent,
    SequenceStartEvent,
)
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.resolver import VersionedResolver

from definitions.diagnostics import shown
from definitions.limits import MAX_NESTING, MAX_VALUES
from definitions.values import check_json

__all__ = ["Position", "Tree", "TreeProblem", "build_tree"]

Position = tuple[int, int]
"""A 0-based (line, column) in the text."""

Path = tuple[str | int, ...]

_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = ("str", "int", "float", "bool", "null")
_KNOWN_TAGS = ", ".join(f"!!{t}" for t in (*_SCALAR_TAGS, "map", "seq"))
_NULLS = ("", "~", "null", "Null", "NULL")
_BOOLS = {"true": True, "false": False, "yes": True, "no": False, "on": True, "off": False}
"""Booleans as YAML 1.2 writes them, and as 1.1 did (resolved only under ``%YAML 1.1``)."""
_INFINITIES = {".inf": float("inf"), "+.inf": float("inf"), "-.inf": float("-inf")}
_BASES = {"0x": 16, "0o": 8, "0b": 2}
_MAX_DIGITS = {16: 16, 8: 22, 2: 64, 10: 19}
"""Significant digits of the largest 64-bit integer in each base."""


class TreeProblem(Exception):
    """A problem that stops reading the file (the rest cannot be trusted or is too big)."""

    def __init__(self, at: Position, message: str) -> None:
        super().__init__(message)
        self.at = at
        self.message = message
        self.earlier: list[tuple[Position, str]] = []
        """Problems with single values found before this one."""


@dataclass
class Tree:
    """What :func:`build_tree` found."""

    data: Any = None
    values: dict[Path, Position] = field(default_factory=dict)
    keys: dict[Path, Position] = field(default_factory=dict)
    problems: list[tuple[Position, str]] = field(default_factory=list)
    """Problems with single values; reading went on past them."""


@dataclass
class _Frame:
    """A mapping or list being built."""

    value: dict[str, Any] | list[Any]
    where: Path
    depth: int
    anchor: str | None
    size: int = 1
    height: int = 1
    key: str | None = None
    key_at: Position = (0, 0)
    merging: bool = False
    merges: list[tuple[Any, Position]] = field(default_factory=list)
    first_line: dict[str, int] = field(default_factory=dict)


def _at(event: Event) -> Position:
    mark = event.start_mark
    return (mark.line, mark.column)


def _tag_name(tag: str) -> str:
    return "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag


def _domain_problem(value: object) -> str | None:
    """What keeps a scalar out of the value domain, phrased "expected X, found Y"."""
    problems = check_json(value, "value")
    return problems[0].split(": ", 1)[1] if problems else None


def _integer(text: str) -> int | str | None:
    """An integer from YAML text; a message when it cannot fit; None when it is no integer."""
    digits = text.replace("_", "")
    sign = -1 if digits.startswith("-") else 1
    digits = digits[1:] if digits[:1] in "+-" and digits else digits
    base = _BASES.get(digits[:2].lower(), 10)
    if base != 10:
        digits = digits[2:]
    significant = digits.lstrip("0")
    if len(significant) > _MAX_DIGITS[base]:
        return f"expected an integer that fits in 64 bits, found one of {len(digits)} digits"
    try:
        return sign * int(digits, base)
    except ValueError:
        return None


def _float(text: str) -> float | None:
    lowered = text.lower()
    if lowered in _INFINITIES:
        return _INFINITIES[lowered]
    if lowered == ".nan":
        return float("nan")
    try:
        return float(text.replace("_", ""))
    except ValueError:
        return None


class _Builder:
    def __init__(self) -> None:
        self.tree = Tree()
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, int, int]] = {}
        self.open_anchors: set[str] = set()
        self.count = 0
        self.documents = 0
        self.resolver = VersionedResolver(version=(1, 2))
        self.root_set = False

    # -- events ---------------------------------------------------------------------------

    def feed(self, event: Event) -> None:
        if isinstance(event, DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                raise TreeProblem(_at(event), "expected one YAML document, found a second one")
            self.resolver = VersionedResolver(version=event.version or (1, 2))
        elif isinstance(event, ScalarEvent):
            self._scalar(event)
        elif isinstance(event, AliasEvent):
            self._alias(event)
        elif isinstance(event, MappingStartEvent | SequenceStartEvent):
            self._start(event)
        elif isinstance(event, CollectionEndEvent):
            self._end()

    def _scalar(self, event: ScalarEvent) -> None:
        self._grow(1, _at(event))
        top = self.stack[-1] if self.stack else None
        if top is not None and isinstance(top.value, dict) and top.key is None and not top.merging:
            self._key(top, event)
            return
        value = self._construct(event)
        self._place(value, _at(event), size=1, height=0)
        if event.anchor is not None:
            self.anchors[event.anchor] = (value, 1, 0)

    def _alias(self, event: AliasEvent) -> None:
        name = event.anchor
        if name in self.open_anchors:
            raise TreeProblem(
                _at(event), f"expected an alias to a complete value, found *{name} inside &{name}"
            )
        if name not in self.anchors:
            raise TreeProblem(
                _at(event), f"expected an alias to an anchor defined above, found *{name}"
            )
        value, size, height = self.anchors[name]
        top = self.stack[-1] if self.stack else None
        depth = top.depth if top else 0
        if depth + height > MAX_NESTING:
            raise TreeProblem(
                _at(event),
                f"expected at most {MAX_NESTING} levels of nesting, found more through *{name}",
            )
        self._grow(size, _at(event), alias=name)
        if top is not None and isinstance(top.value, dict) and top.key is None and not top.merging:
            if not isinstance(value, str):
                raise TreeProblem(
                    _at(event), f"expected a key (text), found *{name}, {_kind(value)}"
                )
            self._set_key(top, value, _at(event))
            return
        self._place(value, _at(event), size=size, height=height)

    def _start(self, event: MappingStartEvent | SequenceStartEvent) -> None:
        at = _at(event)
        is_map = isinstance(event, MappingStartEvent)
        if event.tag not in (None, "!", _CORE + ("map" if is_map else "seq")):
            raise TreeProblem(at, _unknown_tag(event.tag, "a mapping" if is_map else "a list"))
        top = self.stack[-1] if self.stack else None
        if top is not None and isinstance(top.value, dict) and top.key is None and not top.merging:
            raise TreeProblem(
                at, f"expected a key (text), found {'a mapping' if is_map else 'a list'}"
            )
        depth = (top.depth if top else 0) + 1
        if depth > MAX_NESTING:
            raise TreeProblem(at, f"expected at most {MAX_NESTING} levels of nesting, found more")
        self._grow(1, at)
        where = self._slot(at)
        if event.anchor is not None:
            self.open_anchors.add(event.anchor)
        container: dict[str, Any] | list[Any] = {} if is_map else []
        self.stack.append(_Frame(container, where, depth, event.anchor))

    def _end(self) -> None:
        frame = self.stack.pop()
        value: Any = frame.value
        if isinstance(value, dict) and frame.merges:
            value = self._merged(frame)
        if frame.anchor is not None:
            self.open_anchors.discard(frame.anchor)
            self.anchors[frame.anchor] = (value, frame.size, frame.height)
        self._attach(value, size=frame.size, height=frame.height)

    # -- building -------------------------------------------------------------------------

    def _grow(self, size: int, at: Position, alias: str | None = None) -> None:
        self.count += size
        if self.count > MAX_VALUES:
            through = f" (through *{alias})" if alias else ""
            raise TreeProblem(
                at,
                f"expected at most {MAX_VALUES} values once aliases are expanded, "
                f"found more{through}",
            )

    def _slot(self, at: Position) -> Path:
        """The path of the value about to be placed in the top container; records ``at``."""
        if not self.stack:
            self.tree.values[()] = at
            return ()
        top = self.stack[-1]
        if isinstance(top.value, list):
            where: Path = (*top.where, len(top.value))
        elif top.merging:
            where = (*top.where, "<<")
        else:
            assert top.key is not None
            where = (*top.where, top.key)
            self.tree.keys[where] = top.key_at
        self.tree.values[where] = at
        return where

    def _place(self, value: object, at: Position, *, size: int, height: int) -> None:
        self._slot(at)
        self._attach(value, size=size, height=height)

    def _attach(self, value: object, *, size: int, height: int) -> None:
        """Put a finished value in the top container (positions were recorded by _slot)."""
        if not self.stack:
            self.tree.data = value
            return
        top = self.stack[-1]
        top.size += size
        top.height = max(top.height, height + 1)
        if isinstance(top.value, list):
            top.value.append(value)
        elif top.merging:
            top.merges.append((value, self.tree.values[(*top.where, "<<")]))
            top.merging = False
        else:
            assert top.key is not None
            top.value[top.key] = value
            top.key = None

    def _key(self, top: _Frame, event: ScalarEvent) -> None:
        """A scalar key is its text as written (``1:`` and ``true:`` are the keys '1', 'true')."""
        if event.tag is None and event.implicit[0] and event.value == "<<":
            top.merging = True
            return
        tag = event.tag
        if tag not in (None, "!") and not (
            tag.startswith(_CORE) and tag[len(_CORE) :] in _SCALAR_TAGS
        ):
            self.tree.problems.append((_at(event), _unknown_tag(tag, "a key")))
        if event.anchor is not None:
            self.anchors[event.anchor] = (event.value, 1, 0)
        self._set_key(top, event.value, _at(event))

    def _set_key(self, top: _Frame, text: str, at: Position) -> None:
        problem = _domain_problem(text)
        if problem is not None:
            self.tree.problems.append((at, f"{problem} in a key"))
        if text in top.first_line:
            self.tree.problems.append(
                (
                    at,
                    f"duplicate key {shown(text)}: expected each key once, found it again "
                    f"(first on line {top.first_line[text]})",
                )
            )
        else:
            top.first_line[text] = at[0] + 1
        top.key = text
        top.key_at = at

    def _merged(self, frame: _Frame) -> dict[str, Any]:
        """``<<: *a`` or ``<<: [*a, *b]``: keys written here win, then earlier merges."""
        result = dict(frame.value)
        for value, at in frame.merges:
            sources = value if isinstance(value, list) else [value]
            for source in sources:
                if not isinstance(source, dict):
                    raise TreeProblem(
                        at,
                        "expected a mapping or a list of mappings to merge with <<, "
                        f"found {_kind(source)}",
                    )
                for key, item in source.items():
                    if key not in result:
                        result[key] = item
                        where = (*frame.where, key)
                        self.tree.keys.setdefault(where, at)
                        self.tree.values.setdefault(where, at)
        return result

    # -- scalars --------------------------------------------------------------------------

    def _construct(self, event: ScalarEvent) -> object:
        """The value of a scalar, or None with a problem recorded."""
        text: str = event.value
        at = _at(event)
        tag = event.tag
        explicit = tag not in (None, "!")
        if tag is None and event.implicit[0]:
            tag = str(self.resolver.resolve(ScalarNode, text, (True, False)))
        elif tag in (None, "!"):
            tag = _CORE + "str"
        kind = tag[len(_CORE) :] if tag.startswith(_CORE) else None
        value: Any = text
        if explicit and kind not in _SCALAR_TAGS:
            self.tree.problems.append((at, _unknown_tag(tag, "a scalar")))
            return None
        if kind == "null":
            value = None if text in _NULLS or not explicit else _wrong(text, kind)
        elif kind == "bool":
            lowered = text.lower()
            value = _BOOLS[lowered] if lowered in _BOOLS else _wrong(text, kind)
        elif kind == "int":
            number = _integer(text)
            if isinstance(number, str):
                self.tree.problems.append((at, number))
                return None
            value = number if number is not None else (_wrong(text, kind) if explicit else text)
        elif kind == "float":
            real = _float(text)
            value = real if real is not None else (_wrong(text, kind) if explicit else text)
        if isinstance(value, _Wrong):
            self.tree.problems.append((at, value.message))
            return None
        problem = _domain_problem(value)
        if problem is not None:
            self.tree.problems.append((at, problem))
            return None
        return value


@dataclass(frozen=True)
class _Wrong:
    message: str


_WORDS = {"null": "nothing", "bool": "true or false", "int": "a whole number", "float": "a number"}


def _wrong(text: str, kind: str) -> _Wrong:
    return _Wrong(f"expected {_WORDS[kind]} for !!{kind}, found {shown(text)}")


def _unknown_tag(tag: str, what: str) -> str:
    return f"unknown tag on {what}: expected one of {_KNOWN_TAGS}, found {shown(_tag_name(tag))}"


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "a scalar"


def build_tree(text: str) -> Tree:
    """Parse ``text`` into plain data with the position of every key and value.

    Raises:
        TreeProblem: the file is beyond a budget, or uses something outside the language.
        ruamel.yaml.error.YAMLError: the text is not YAML.

    """
    builder = _Builder()
    try:
        for event in YAML(typ="safe", pure=True).parse(text):
            builder.feed(event)
    except TreeProblem as problem:
        problem.earlier = builder.tree.problems
        raise
    return builder.tree
