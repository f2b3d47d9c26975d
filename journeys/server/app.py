"""The HTTP API: ``journeys serve`` (FastAPI on uvicorn, HTTPS with a certificate)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from journeys.client import JourneysClient
from journeys.config import Settings
from journeys.server import errors, openapi
from journeys.server.auth import Credentials
from journeys.server.guards import BodyLimit, LastResort, RequestLine
from journeys.server.native import broadcast_router
from journeys.server.native import router as native_router
from journeys.server.routing import Route
from journeys.server.track_api import router as track_router
from journeys.server.unsubscribe import router as unsubscribe_router

__all__ = ["create_app"]

log = logging.getLogger("journeys.server")


def create_app(settings: Settings, client: JourneysClient | None = None) -> FastAPI:
    """The API application.

    Args:
        settings: the configuration (``[server]`` holds the credentials and limits).
        client: a connected client to use; by default one is connected on start-up and
            closed on shutdown.

    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if warning := settings.preferences.link_warning():
            log.warning(warning)
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
    app.include_router(unsubscribe_router)
    # Outermost last: LastResort sees what escapes the others.
    limits = settings.server
    app.add_middleware(BodyLimit, body=limits.max_body_bytes, batch=limits.max_batch_bytes)
    app.add_middleware(RequestLine)
    app.add_middleware(LastResort)

    @app.get("/healthz", tags=["Operations"])
    async def healthz() -> dict[str, Any]:
        """Liveness."""
        return {"ok": True}

    return app
