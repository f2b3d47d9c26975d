"""The HTTP API: ``journeys serve`` (FastAPI on uvicorn, HTTPS with a certificate)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse

from definitions.errors import InvalidTokenError
from journeys.client import JourneysClient
from journeys.config import Settings
from journeys.server import errors, openapi
from journeys.server.auth import Credentials
from journeys.server.errors import RequestError
from journeys.server.guards import BodyLimit, LastResort, RequestLine
from journeys.server.native import broadcast_router
from journeys.server.native import router as native_router
from journeys.server.routing import Route
from journeys.server.track_api import router as track_router

__all__ = ["create_app"]

log = logging.getLogger("journeys.server")

Token = Annotated[str, Query(min_length=1, description="The signed token of the link.")]


def create_app(settings: Settings, client: JourneysClient | None = None) -> FastAPI:
    """The API application.

    Args:
        settings: the configuration (``[server]`` holds the credentials and limits).
        client: a connected client to use; by default one is connected on start-up and
            closed on shutdown.

    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = client is None
        app.state.client = client or await JourneysClient.connect(settings)
        try:
            yield
        finally:
            if own:
                await app.state.client.close()

    app = FastAPI(
        title="journeys",
        version="0.1.0",
        summary="Customer journeys on Temporal, with a Customer.io-compatible Track API.",
        lifespan=lifespan,
    )
    app.router.route_class = Route
    app.state.credentials = Credentials(settings.server)
    app.state.client = client
    errors.install(app)
    openapi.install(app)
    app.include_router(track_router)
    app.include_router(native_router)
    app.include_router(broadcast_router)
    # Outermost last: LastResort sees what escapes the others.
    limits = settings.server
    app.add_middleware(BodyLimit, body=limits.max_body_bytes, batch=limits.max_batch_bytes)
    app.add_middleware(RequestLine)
    app.add_middleware(LastResort)

    @app.get("/healthz", tags=["Operations"])
    async def healthz() -> dict[str, Any]:
        """Liveness."""
        return {"ok": True}

    async def apply_unsubscribe(request: Request, token: str) -> str:
        journeys: JourneysClient = request.app.state.client
        if not journeys.signing_secret:
            log.warning("an unsubscribe link was followed but no signing secret is configured")
            raise RequestError(404, ["token: unsubscribe links are not enabled on this server"])
        try:
            prefs = await journeys.unsubscribe(token)
        except InvalidTokenError:
            raise RequestError(
                400, ["token: not a valid unsubscribe token (this server did not sign it)"]
            ) from None
        what = "this topic" if prefs.topics else "marketing messages"
        return f"<!doctype html><p>You are unsubscribed from {what}.</p>"

    unsubscribe_route: dict[str, Any] = {
        "tags": ["Preferences"],
        "response_class": HTMLResponse,
        "responses": {
            400: {"description": "The token is not one this server signed."},
            404: {"description": "Unsubscribe links are not enabled (no signing secret)."},
            503: {},
        },
    }

    @app.get("/unsubscribe", operation_id="unsubscribe_link", **unsubscribe_route)
    @app.post("/unsubscribe", operation_id="unsubscribe_one_click", **unsubscribe_route)
    async def unsubscribe(request: Request, token: Token) -> str:
        """Apply a signed unsubscribe token: a link (GET) or a List-Unsubscribe one-click POST."""
        return await apply_unsubscribe(request, token)

    return app
