"""Pydantic's validation errors, rephrased for journey authors and located in their YAML."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from definitions.conditions import CONDITION_KEYS
from definitions.diagnostics import Diagnostic, closest, describe_value, shown
from definitions.source import Located, SourceFile

__all__ = ["diagnostics_from"]

_TYPE_WORDS = {
    "string_type": "a string",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dataclass_type": "a mapping",
}


def diagnostics_from(
    error: ValidationError,
    source: SourceFile,
    root: type[BaseModel] | None,
    base: Located = (),
) -> Iterator[Diagnostic]:
    """One diagnostic per error, with the tags of tagged unions taken out of the paths."""
    for item in error.errors(include_url=False):
        raw = tuple(item["loc"])
        yield _diagnostic(item, raw, source, root, base)


def _strip(loc: Located) -> Located:
    return tuple(p for p in loc if not (isinstance(p, str) and p.startswith(_TAGS)))


_TAGS = ("step:", "cond:", "seg:", "entry:")


def _diagnostic(
    item: ErrorDetails,
    raw: Located,
    source: SourceFile,
    root: type[BaseModel] | None,
    base: Located,
) -> Diagnostic:
    kind = item["type"]
    where = (*base, *_strip(raw))
    found = item.get("input")
    if kind == "extra_forbidden":
        key = str(where[-1])
        allowed = _allowed_keys(root, raw[:-1])
        hint = closest(key, allowed)
        choices = f": expected one of {', '.join(allowed)}," if allowed else ","
        return source.diagnostic(
            where, f"unknown key {shown(key)}{choices} found {shown(key)}{hint}", at_key=True
        )
    if kind == "missing":
        return source.diagnostic(where, f"expected key {shown(str(where[-1]))}, found none")
    if kind in ("not_a_step", "not_a_condition"):
        return _not_a_kind(kind, where, found, source)
    if kind == "literal_error":
        expected = item.get("ctx", {}).get("expected", "")
        return source.diagnostic(
            where, f"expected one of {expected}, found {describe_value(found)}"
        )
    if kind in _TYPE_WORDS:
        return source.diagnostic(
            where, f"expected {_TYPE_WORDS[kind]}, found {describe_value(found)}"
        )
    if kind == "too_short":
        least = item.get("ctx", {}).get("min_length")
        return source.diagnostic(
            where, f"expected at least {least} items, found {len(found or [])}"
        )
    if kind in ("greater_than", "less_than_equal", "greater_than_equal", "less_than"):
        bound = next(iter(item.get("ctx", {}).values()), "")
        words = {
            "greater_than": "greater than",
            "less_than_equal": "at most",
            "greater_than_equal": "at least",
            "less_than": "less than",
        }[kind]
        return source.diagnostic(where, f"expected a number {words} {bound}, found {found}")
    message = item["msg"] if kind == "journeys" else item["msg"][0].lower() + item["msg"][1:]
    return source.diagnostic(where, message)


def _not_a_kind(kind: str, where: Located, found: object, source: SourceFile) -> Diagnostic:
    from definitions.steps import KINDS

    what, names = ("step", list(KINDS)) if kind == "not_a_step" else ("condition", CONDITION_KEYS)
    listing = ", ".join(names)
    if not isinstance(found, dict):
        message = (
            f"expected a {what} (a mapping with one of {listing}), found {describe_value(found)}"
        )
        return source.diagnostic(where, message)
    present = [k for k in found if k in names]
    if len(present) > 1:
        kinds = " and ".join(repr(k) for k in present)
        return source.diagnostic(where, f"expected one {what} kind, found {kinds} together")
    keys = list(found)
    if not keys:
        return source.diagnostic(where, f"expected a {what} ({listing}), found an empty mapping")
    unknown = next((k for k in keys if closest(str(k), names)), keys[0])
    message = (
        f"unknown {what} kind: expected one of {listing}, found {shown(str(unknown))}"
        f"{closest(str(unknown), names)}"
    )
    return source.diagnostic((*where, str(unknown)), message, at_key=True)


def _allowed_keys(root: type[BaseModel] | None, loc: Located) -> list[str]:
    """The keys the model at ``loc`` accepts, found by walking field annotations."""
    from definitions.conditions import _KINDS as CONDITION_MODELS
    from definitions.steps import KINDS

    model: Any = root
    annotation: Any = None
    for part in loc:
        if isinstance(part, str) and part.startswith("step:"):
            model, annotation = KINDS[part[5:]].spec, None
        elif isinstance(part, str) and part.startswith("cond:"):
            model, annotation = CONDITION_MODELS[part[5:]], None
        elif part == "seg:manual":
            from definitions.compiler import ManualSegment

            model, annotation = ManualSegment, None
        elif isinstance(part, str) and model is not None:
            fields = {(f.alias or n): f for n, f in model.model_fields.items()}
            if part not in fields:
                return []
            annotation = fields[part].annotation
            model = _model_in(annotation)
        elif isinstance(part, int):
            model = _model_in(annotation, item=True)
    if model is None or not hasattr(model, "model_fields"):
        return []
    return [f.alias or n for n, f in model.model_fields.items()]


def _model_in(annotation: object, *, item: bool = False) -> type[BaseModel] | None:
    """The model class inside ``X | None``, ``list[X]`` (with ``item``) or ``dict[str, X]``."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _model_in(args[0], item=item)
    if item and origin is list and args:
        return _model_in(args[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None
