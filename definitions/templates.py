"""Message templates: one YAML file per message, with a variant per channel.

``journeys/templates/welcome.yaml``::

    engine: liquid            # or jinja (sandboxed)
    email:
      subject: "Welcome, {{ customer.first_name }}"
      html: "<p>Hi {{ customer.first_name }}</p>"
      text: "Hi {{ customer.first_name }}"
    webhook:
      body: { event: welcome, name: "{{ customer.first_name }}" }

Every string is a template; a webhook body is a JSON value whose strings are templates.
Variables: ``customer`` (profile), ``event`` (the triggering event), ``trigger`` (data passed
to trigger) and ``journey`` (name, step, run id). HTML fields are auto-escaped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

import jinja2
import liquid
from jinja2.sandbox import SandboxedEnvironment
from pydantic import model_validator

from definitions.model import SchemaModel, invalid

__all__ = [
    "CompiledTemplate",
    "EmailVariant",
    "TemplateSpec",
    "WebhookVariant",
    "render_string",
    "render_value",
    "syntax_errors",
]

Engine = Literal["liquid", "jinja"]


class EmailVariant(SchemaModel):
    """An email: a subject and an HTML body, a text body, or both."""

    subject: str
    html: str | None = None
    text: str | None = None

    @model_validator(mode="after")
    def _has_body(self) -> EmailVariant:
        if self.html is None and self.text is None:
            raise invalid("an email needs a body: expected 'html' or 'text', found neither")
        return self


class WebhookVariant(SchemaModel):
    """A webhook's JSON body; every string in it is a template."""

    body: Any = None


class TemplateSpec(SchemaModel):
    """A template file as written in YAML."""

    engine: Engine = "liquid"
    description: str | None = None
    email: EmailVariant | None = None
    webhook: WebhookVariant | None = None


@dataclass(frozen=True)
class CompiledTemplate:
    """A template carried inside a plan: its engine and its variants by channel."""

    name: str
    engine: str
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)


def _strings(
    value: Any, where: tuple[str | int, ...]
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
def _liquid(escape: bool) -> liquid.Environment:
    return liquid.Environment(autoescape=escape)


@cache
def _jinja(escape: bool) -> SandboxedEnvironment:
    return SandboxedEnvironment(autoescape=escape, undefined=jinja2.ChainableUndefined)


def _parser(engine: str, escape: bool) -> Callable[[str], Any]:
    if engine == "jinja":
        return _jinja(escape).from_string
    return _liquid(escape).from_string


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


def render_string(engine: str, text: str, variables: dict[str, Any], *, html: bool = False) -> str:
    """Render one template string with the message variables."""
    return str(_parser(engine, html)(text).render(**variables))


def render_value(engine: str, value: Any, variables: dict[str, Any]) -> Any:
    """Render every string inside a JSON value (a webhook body), keeping its shape."""
    if isinstance(value, str):
        return render_string(engine, value, variables)
    if isinstance(value, dict):
        return {k: render_value(engine, v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(engine, v, variables) for v in value]
    return value
