"""Paths as sent: one segment per ``/`` of the raw path, so an id may hold ``%2F``."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.types import Scope

__all__ = ["segment_path"]


def segment_path(scope: Scope) -> str | None:
    """The path with each raw segment decoded and its own ``%`` and ``/`` re-escaped.

    ``/customers/ana%2Fb%C3%A9/events`` becomes ``/customers/ana%2Fbé/events`` and
    ``/x/50%25`` stays ``/x/50%25``: only ``%25`` and ``%2F`` remain, so a route's
    ``[^/]+`` matches one segment as sent, and one :func:`~urllib.parse.unquote` of a
    parameter gives the id back. None when the scope has no raw path or it is not UTF-8
    (refused earlier, see :mod:`journeys.server.guards`).
    """
    raw = scope.get("raw_path")
    if not raw:
        return None
    try:
        segments = [unquote_to_bytes(s).decode("utf-8") for s in raw.split(b"/")]
    except UnicodeDecodeError:
        return None
    return "/".join(s.replace("%", "%25").replace("/", "%2F") for s in segments)
