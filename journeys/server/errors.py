"""Errors as HTTP answers: one JSON shape, the field that is wrong named in each."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from definitions.errors import (
    DefinitionError,
    EngineUnavailableError,
    InvalidRequestError,
    InvalidTokenError,
    UnknownJourneyError,
    UnknownRunError,
)

__all__ = ["error_body", "install"]


def error_body(message: str, errors: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """``{"meta": {"error": …}, "errors": [{"field": …, "message": …}]}``."""
    body: dict[str, Any] = {"meta": {"error": message}}
    if errors:
        body["errors"] = errors
    return body


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    """Register the handlers that turn exceptions into answers."""

    @app.exception_handler(RequestValidationError)
    async def _invalid_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field(tuple(e["loc"])), "message": e["msg"]} for e in exc.errors()]
        first = errors[0] if errors else {"field": "body", "message": "invalid"}
        return JSONResponse(error_body(f"{first['field']}: {first['message']}", errors), 422)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(error_body(str(exc.detail)), exc.status_code, headers=exc.headers)

    @app.exception_handler(InvalidRequestError)
    async def _invalid(request: Request, exc: InvalidRequestError) -> JSONResponse:
        errors = []
        for problem in exc.problems:
            field, _, message = problem.partition(": ")
            errors.append({"field": field, "message": message or problem})
        return JSONResponse(error_body(exc.problems[0] if exc.problems else str(exc), errors), 422)

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
        return JSONResponse(
            error_body(
                "the journey definitions on the server have problems; run `journeys validate`"
            ),
            500,
        )

    @app.exception_handler(EngineUnavailableError)
    async def _engine(request: Request, exc: EngineUnavailableError) -> JSONResponse:
        return JSONResponse(error_body(str(exc)), 503)
