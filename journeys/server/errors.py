"""Errors as HTTP answers: one JSON shape, the field that is wrong named in each.

Every answer that is not a success has the body::

    {"meta": {"error": "what went wrong"},
     "errors": [{"field": "data.amount", "message": "expected a finite number, found nan"}]}

(``errors`` only when fields are concerned). That holds for the answers of the routes and
for those of the framework: 404 for an unknown path, 405 for a method a path does not
take, 413, 415, 422, and the last-resort 500, which logs the traceback and shows none.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import Send

from definitions.errors import (
    DefinitionError,
    EngineUnavailableError,
    InvalidRequestError,
    InvalidTokenError,
    UnknownJourneyError,
    UnknownRunError,
)
from journeys.server.paths import segment_path

__all__ = ["RequestError", "error_body", "install", "problems_body", "send_error"]

log = logging.getLogger("journeys.server")

_REASONS = {
    400: "bad request",
    401: "unauthorized",
    403: "forbidden",
    404: "not found",
    405: "method not allowed",
    413: "request body too large",
    415: "unsupported media type",
    422: "invalid request",
    429: "rate limit exceeded",
    500: "internal server error",
    503: "service unavailable",
}


class RequestError(HTTPException):
    """A request refused before it reaches a route (bad encoding, wrong media type…).

    Attributes:
        problems: one line per problem, ``field: message``.

    """

    def __init__(
        self, status: int, problems: list[str], headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status, problems[0], headers=headers)
        self.problems = problems


def error_body(message: str, errors: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """``{"meta": {"error": …}, "errors": [{"field": …, "message": …}]}``."""
    body: dict[str, Any] = {"meta": {"error": message}}
    if errors:
        body["errors"] = errors
    return body


def _fields(problems: list[str]) -> list[dict[str, str]]:
    """``field: message`` lines as error items; ``body.x`` is named ``x`` (FastAPI's way)."""
    items = []
    for problem in problems:
        field, sep, message = problem.partition(": ")
        if not sep:
            field, message = "body", problem
        items.append({"field": field.removeprefix("body."), "message": message})
    return items


def problems_body(problems: list[str]) -> dict[str, Any]:
    """The error body of ``field: message`` lines; the first one is the headline."""
    items = _fields(problems)
    return error_body(f"{items[0]['field']}: {items[0]['message']}", items)


def _answer(
    status: int, problems: list[str], headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(problems_body(problems), status, headers=headers)


async def send_error(send: Send, status: int, content: dict[str, Any]) -> None:
    """Answer an error from ASGI middleware, before any route, and close the connection.

    Args:
        send: the ASGI send callable.
        status: the HTTP status.
        content: the body, from :func:`error_body` or :func:`problems_body`.

    """
    body = json.dumps(content).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _field(loc: tuple[int | str, ...]) -> str:
    """``("body", "batch", 0, "timestamp")`` as ``batch[0].timestamp``."""
    field = ""
    for part in loc:
        if part in ("body", "query", "path", "header"):
            continue
        field += f"[{part}]" if isinstance(part, int) else f".{part}"
    return field.lstrip(".") or "body"


async def _http_answer(request: Request, exc: HTTPException) -> JSONResponse:
    """An HTTPException's answer: ours with its problems, the framework's in our words."""
    if isinstance(exc, RequestError):
        return _answer(exc.status_code, exc.problems, exc.headers)
    message = str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = f"not found: no route {request.method} {request.url.path}"
    elif exc.status_code == 405 and message == "Method Not Allowed":
        allowed = ", ".join(_methods(request))
        message = f"method {request.method} not allowed on this path: expected {allowed}"
        return JSONResponse(error_body(message), 405, headers={"Allow": allowed})
    elif message == _default_detail(exc.status_code):
        message = _REASONS.get(exc.status_code, message)
    return JSONResponse(error_body(message), exc.status_code, headers=exc.headers)


def install(app: FastAPI) -> None:
    """Register the handlers that turn exceptions into answers."""

    @app.exception_handler(RequestValidationError)
    async def _invalid_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field(tuple(e["loc"])), "message": e["msg"]} for e in exc.errors()]
        first = errors[0] if errors else {"field": "body", "message": "invalid"}
        return JSONResponse(error_body(f"{first['field']}: {first['message']}", errors), 422)

    # Starlette's: unknown paths and methods too
    app.exception_handler(HTTPException)(_http_answer)

    @app.exception_handler(InvalidRequestError)
    async def _invalid(request: Request, exc: InvalidRequestError) -> JSONResponse:
        return _answer(422, exc.problems or [str(exc)])

    @app.exception_handler(UnknownJourneyError)
    async def _unknown_journey(request: Request, exc: UnknownJourneyError) -> JSONResponse:
        return JSONResponse(error_body(str(exc)), 404)

    @app.exception_handler(UnknownRunError)
    async def _unknown(request: Request, exc: UnknownRunError) -> JSONResponse:
        return JSONResponse(error_body(str(exc)), 404)

    @app.exception_handler(InvalidTokenError)
    async def _token(request: Request, exc: InvalidTokenError) -> JSONResponse:
        return JSONResponse(error_body(str(exc)), 400)

    @app.exception_handler(DefinitionError)
    async def _definitions(request: Request, exc: DefinitionError) -> JSONResponse:
        log.error("journey definitions have problems: %s", exc)
        return JSONResponse(
            error_body(
                "the journey definitions on the server have problems; run `journeys validate`"
            ),
            500,
        )

    @app.exception_handler(EngineUnavailableError)
    async def _engine(request: Request, exc: EngineUnavailableError) -> JSONResponse:
        return JSONResponse(error_body(str(exc)), 503)


def _methods(request: Request) -> list[str]:
    """Every method the API documents at this path (Starlette names one route's only)."""
    path = segment_path(request.scope) or request.url.path
    methods: set[str] = set()
    for template, operations in request.app.openapi()["paths"].items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            methods |= {m.upper() for m in operations}
    return sorted(methods)


def _default_detail(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
