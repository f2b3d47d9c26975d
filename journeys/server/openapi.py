"""The OpenAPI document: security schemes, and every error an operation can answer.

FastAPI documents the successes and a 422 in its own ``{"detail"}`` shape. Each operation
here is documented with the errors it can answer, all in the ``Error`` shape of
:mod:`journeys.server.errors`:

- every operation: 400 (a path or query that is not UTF-8), 500;
- with parameters or a body: 422 (a value that is wrong, the field named);
- with a body: 413 (over the size limit), 415 (not JSON);
- with path parameters: 404 (unknown journey, run, person, segment, message);
- with credentials: 401, 403 (a credential of the other kind), 429, 503 (the engine
  cannot be reached).

A route adds others with ``responses=`` (for instance a 404 without path parameters).

Parameters say what :class:`~journeys.server.routing.Route` checks: a path parameter is an
id (:data:`~journeys.server.fields.ID_SCHEMA`), a query string is text without NUL.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from journeys.server.fields import ID_SCHEMA, TEXT_SCHEMA

__all__ = ["ERROR_SCHEMA", "document", "install"]

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["meta"],
    "properties": {
        "meta": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string", "description": "What went wrong."}},
        },
        "errors": {
            "type": "array",
            "description": "One item per field that is wrong.",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}

_DESCRIPTIONS = {
    "400": "The request line or the body is not UTF-8 or not JSON.",
    "401": "Missing or unknown credentials.",
    "403": "A credential of the other kind (a Track API key on the native API…).",
    "404": "Unknown journey, run, trigger, person, segment or message.",
    "413": "The body is over max_body_bytes (max_batch_bytes for a batch).",
    "415": "The body is not application/json.",
    "422": "A value that cannot be used; errors[] names each field.",
    "429": "Over the rate limit of the credential; retry after Retry-After seconds.",
    "500": "An error of the server; its log has the details.",
    "503": "The Temporal server or the store cannot be reached.",
}

_REF = {"$ref": "#/components/schemas/Error"}


def _error(code: str, existing: dict[str, Any] | None) -> dict[str, Any]:
    response = dict(existing or {})
    if not response.get("description") or response["description"] == "Validation Error":
        response["description"] = _DESCRIPTIONS.get(code, "An error.")
    # A route may also answer a person's browser in HTML (the unsubscribe pages).
    pages = {k: v for k, v in response.get("content", {}).items() if k == "text/html"}
    response["content"] = {"application/json": {"schema": _REF}, **pages}
    if code == "401":
        response["headers"] = {
            "WWW-Authenticate": {"schema": {"type": "string"}, "description": "The scheme."}
        }
    if code == "429":
        response["headers"] = {
            "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}
        }
    return response


def _codes(operation: dict[str, Any]) -> set[str]:
    codes = {"400", "500"}
    parameters = operation.get("parameters", [])
    if parameters or "requestBody" in operation:
        codes.add("422")
    if "requestBody" in operation:
        codes |= {"413", "415"}
    if any(p.get("in") == "path" for p in parameters):
        codes.add("404")
    if operation.get("security"):
        codes |= {"401", "403", "429", "503"}
    return codes


def _text(schema: dict[str, Any]) -> None:
    """Add the no-NUL pattern to a string schema (or the string branch of an anyOf)."""
    for branch in [schema, *schema.get("anyOf", [])]:
        if branch.get("type") == "string" and "pattern" not in branch:
            branch["pattern"] = TEXT_SCHEMA["pattern"]


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the Error schema, each operation's errors and its parameters' domains."""
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Error"] = ERROR_SCHEMA
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "path":
                    parameter["schema"] = dict(ID_SCHEMA)
                elif parameter.get("in") == "query":
                    _text(parameter.setdefault("schema", {}))
                    _text(parameter["schema"].get("items", {}))
            responses = operation.setdefault("responses", {})
            for code in _codes(operation) | {c for c in responses if c[0] in "45"}:
                responses[code] = _error(code, responses.get(code))
            operation["responses"] = dict(sorted(responses.items()))
    return schema


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` (``/openapi.json``) return the documented errors too."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
