"""The route class of every operation: ids may hold ``/``; bodies, paths and queries checked.

Customer.io allows any string as a person id, and its clients percent-encode ``/`` as
``%2F``. The ASGI server hands the application the decoded path, where ``a%2Fb`` and
``a/b`` are the same, so routes are matched on the path *as sent*, one segment per
``/`` of the raw path; ``{identifier}`` then receives ``a/b``.

Before the endpoint runs, every path parameter must be a usable id and every query value
usable text (:mod:`definitions.values`; 422 naming the parameter), and a JSON body is read
strictly (:mod:`journeys.server.body`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import unquote

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import Scope

from definitions.errors import InvalidRequestError
from definitions.values import check_id, check_text
from journeys.server.body import StrictRequest
from journeys.server.paths import segment_path

__all__ = ["Route"]

_SENT = "journeys.path_as_sent"
"""The scope's key for the path as sent (:func:`segment_path`), once worked out."""


class Route(APIRoute):
    """An :class:`~fastapi.routing.APIRoute` matched segment by segment, its input checked."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """Match the path as sent, so an id may contain an encoded ``/``.

        A path sent without ``%`` is the path as decoded (most requests): matched as
        it is. Otherwise the path as sent is worked out once per request (every route
        is asked) and kept in the scope.
        """
        if scope["type"] == "http" and not _route_path(scope).startswith(self._static_prefix):
            return Match.NONE, {}  # asked of every route in turn: most say no here, cheaply
        raw = scope.get("raw_path")
        if not raw or b"%" not in raw:
            return super().matches(scope)
        if _SENT in scope:
            path = scope[_SENT]
        else:
            path = scope[_SENT] = segment_path(scope)
        if path is None or "%" not in path:
            return super().matches(scope)
        match, child = super().matches({**scope, "path": path})
        if match is not Match.NONE:
            child["path_params"] = {
                k: unquote(v) if isinstance(v, str) else v
                for k, v in child.get("path_params", {}).items()
            }
        return match, child

    @functools.cached_property
    def _static_prefix(self) -> str:
        """The path up to its first parameter: a path that does not start so cannot match."""
        return self.path.split("{", 1)[0]

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """FastAPI's handler, given a :class:`StrictRequest` whose input was checked."""
        handle = super().get_route_handler()
        takes_body = self.body_field is not None

        async def checked(request: Request) -> Response:
            strict = StrictRequest(request.scope, request.receive)
            problems: list[str] = []
            for name, value in strict.path_params.items():
                problems += check_id(value, name)
            for name, value in strict.query_params.multi_items():
                problems += check_text(value, name)
            if problems:
                raise InvalidRequestError(problems)
            if takes_body:
                await strict.check_body()
            return await handle(strict)

        return checked


def _route_path(scope: Scope) -> str:
    """The path routes are matched on: the request's, less the application's root path."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path
