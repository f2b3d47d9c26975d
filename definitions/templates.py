"""Message templates: one YAML file per message, with a variant per channel.

``journeys/templates/welcome.yaml``::

    engine: liquid            # or jinja (sandboxed)
    email:
      subject: "Welcome, {{ customer.first_name }}"
      html: "<p>Hi {{ customer.first_name }}</p>"
      text: "Hi {{ customer.first_name }}"
    sms:
      body: "Welcome, {{ customer.first_name }}!"
    push:
      title: Welcome
      body: "Hi {{ customer.first_name }}, your account is ready."
    webhook:
      body: { event: welcome, name: "{{ customer.first_name }}" }

The variants are the registered channels' (:data:`~definitions.channels.CHANNELS`: each
channel's module defines its own, see :func:`template_model`). Every string is a template;
a webhook body is a JSON value whose strings are templates.
Variables: ``customer`` (profile), ``event`` (the triggering event), ``trigger`` (data passed
to trigger) and ``journey`` (name, step, run id, unsubscribe_url). HTML fields are
auto-escaped. Templates are strict by default: an undefined variable fails the message
(``| default: …`` still works); ``strict: false`` renders it as empty instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

import jinja2
import liquid
from jinja2.sandbox import SandboxedEnvironment
from pydantic import create_model

from definitions.channels import CHANNELS, ChannelSpec
from definitions.errors import RenderError
from definitions.model import SchemaModel
from definitions.values import JSONValue

__all__ = [
    "CompiledTemplate",
    "RenderError",
    "TemplateSpec",
    "render_string",
    "render_value",
    "syntax_errors",
    "template_model",
]

Engine = Literal["liquid", "jinja"]


class TemplateSpec(SchemaModel):
    """What every template file has, whatever its channels (see :func:`template_model`)."""

    engine: Engine = "liquid"
    strict: bool = True
    """Undefined variables are errors (the message fails instead of going out half-rendered)."""
    description: str | None = None


def template_model() -> type[TemplateSpec]:
    """A template file as written in YAML: :class:`TemplateSpec` and a variant per channel.

    Built from the registered channels (:data:`~definitions.channels.CHANNELS`), each
    variant optional and keyed by its channel's name.
    """
    return _template_model(CHANNELS.key())


@functools.lru_cache(maxsize=8)
def _template_model(specs: tuple[ChannelSpec, ...]) -> type[TemplateSpec]:
    variants: dict[str, Any] = {spec.name: (spec.variant | None, None) for spec in specs}
    model: type[TemplateSpec] = create_model(
        "TemplateSpec", __base__=TemplateSpec, __module__=__name__, **variants
    )
    return model


@dataclass(frozen=True)
class CompiledTemplate:
    """A template carried inside a plan: its engine and its variants by channel."""

    name: str
    engine: str
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    strict: bool = True


def _strings(
    value: object, where: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*where, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*where, index))


@cache
def _liquid(escape: bool, strict: bool) -> liquid.Environment:
    undefined = liquid.StrictDefaultUndefined if strict else liquid.Undefined
    return liquid.Environment(autoescape=escape, undefined=undefined)


@cache
def _jinja(escape: bool, strict: bool) -> SandboxedEnvironment:
    undefined = jinja2.StrictUndefined if strict else jinja2.ChainableUndefined
    return SandboxedEnvironment(autoescape=escape, undefined=undefined)


_Template = jinja2.Template | liquid.BoundTemplate
"""A parsed template of either engine (each has ``render(**variables)``)."""


def _parser(engine: str, escape: bool, strict: bool = True) -> Callable[[str], _Template]:
    return functools.partial(_parsed, engine, escape, strict)


@functools.lru_cache(maxsize=1024)
def _parsed(engine: str, escape: bool, strict: bool, text: str) -> _Template:
    """A parsed template, kept: a cohort renders the same strings for every recipient."""
    if engine == "jinja":
        return _jinja(escape, strict).from_string(text)
    return _liquid(escape, strict).from_string(text)


def syntax_errors(
    engine: str, variants: dict[str, dict[str, Any]]
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every string that does not parse, as (path within the file, message)."""
    for channel, fields in variants.items():
        for where, text in _strings(fields, (channel,)):
            try:
                _parser(engine, where[-1] == "html")(text)
            except liquid.exceptions.LiquidError as exc:
                yield where, f"Liquid syntax error: {exc.message}"
            except jinja2.TemplateSyntaxError as exc:
                yield where, f"Jinja syntax error: {exc.message} (line {exc.lineno})"
            except (RecursionError, SyntaxError):  # Jinja's parser and code generator recurse
                yield (
                    where,
                    f"expected a template that {engine} can parse, found one nested too deep",
                )


def render_string(
    engine: str, text: str, variables: dict[str, Any], *, html: bool = False, strict: bool = True
) -> str:
    """Render one template string with the message variables.

    Raises:
        RenderError: with the engine's reason.

    """
    try:
        return str(_parser(engine, html, strict)(text).render(**variables))
    except liquid.exceptions.LiquidError as exc:
        raise RenderError(exc.message or str(exc)) from None
    except jinja2.TemplateError as exc:
        raise RenderError(exc.message or str(exc)) from None


def render_value(
    engine: str, value: JSONValue, variables: dict[str, Any], *, strict: bool = True
) -> JSONValue:
    """Render every string inside a JSON value (a webhook body), keeping its shape."""
    if isinstance(value, str):
        return render_string(engine, value, variables, strict=strict)
    if isinstance(value, dict):
        return {k: render_value(engine, v, variables, strict=strict) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(engine, v, variables, strict=strict) for v in value]
    return value
