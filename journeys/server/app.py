"""The HTTP API: ``journeys serve`` (FastAPI on uvicorn, HTTPS with a certificate)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from journeys.client import JourneysClient
from journeys.config import Settings
from journeys.server import errors
from journeys.server.auth import Credentials
from journeys.server.native import broadcast_router
from journeys.server.native import router as native_router
from journeys.server.track_api import router as track_router

__all__ = ["create_app"]


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
    app.state.credentials = Credentials(settings.server)
    app.state.client = client
    errors.install(app)
    app.include_router(track_router)
    app.include_router(native_router)
    app.include_router(broadcast_router)
    limits = settings.server

    @app.middleware("http")
    async def body_limit(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        batch = request.url.path.endswith("/batch")
        limit = limits.max_batch_bytes if batch else limits.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            what = "batch" if batch else "request body"
            return JSONResponse(
                errors.error_body(
                    f"{what} too large: expected at most {limit} bytes, found {declared}"
                ),
                413,
            )
        return await call_next(request)

    @app.get("/healthz", tags=["Operations"])
    async def healthz() -> dict[str, Any]:
        """Liveness."""
        return {"ok": True}

    async def apply_unsubscribe(request: Request, token: str) -> str:
        prefs = await request.app.state.client.unsubscribe(token)
        what = "this topic" if prefs.topics else "marketing messages"
        return f"<!doctype html><p>You are unsubscribed from {what}.</p>"

    @app.get("/unsubscribe", tags=["Preferences"], response_class=HTMLResponse)
    async def unsubscribe_link(request: Request, token: str) -> str:
        """Apply a signed unsubscribe token from a link."""
        return await apply_unsubscribe(request, token)

    @app.post("/unsubscribe", tags=["Preferences"], response_class=HTMLResponse)
    async def unsubscribe_one_click(request: Request, token: str) -> str:
        """Apply a signed unsubscribe token (a List-Unsubscribe one-click POST)."""
        return await apply_unsubscribe(request, token)

    return app
