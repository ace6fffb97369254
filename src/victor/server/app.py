"""The server's ASGI app: :func:`create_app` puts an orchestrator behind HTTP."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from victor.agent.orchestrator import AgentOrchestrator
from victor.server.errors import NOT_FOUND, UNAVAILABLE, APIError, error_body
from victor.server.keys import KeyStore
from victor.server.limits import KeyLimits
from victor.server.openapi import openapi_document
from victor.server.routes import api_routes
from victor.server.state import ServerState

logger = logging.getLogger(__name__)

__all__ = ["DrainingGuard", "create_app"]

# Paths still answered while the server drains: probes and metrics.
_ALWAYS = frozenset({"/healthz", "/readyz", "/metrics"})


class DrainingGuard:
    """Answers 503 to new requests once the server is shutting down (in-flight ones
    finish)."""

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.state.draining and scope["path"] not in _ALWAYS:
            response = JSONResponse(
                error_body("the server is shutting down; retry on another", UNAVAILABLE),
                status_code=503,
                headers={"Retry-After": "1", "Connection": "close"},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    kind = NOT_FOUND if exc.status_code == 404 else "invalid_request_error"
    return JSONResponse(
        error_body(f"{request.method} {request.url.path}: {exc.detail}", kind),
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


async def _openapi(request: Request) -> Response:
    return JSONResponse(openapi_document())


def create_app(
    orchestrator: AgentOrchestrator,
    *,
    key_store: KeyStore | None = None,
    auth: bool | None = None,
    redis_url: str | None = None,
    models: list[str] | None = None,
    max_body_bytes: int = 4 * 1024 * 1024,
    rate_limit_fail_open: bool = True,
    key_cache_seconds: float = 1.0,
    extra_routes: Sequence[BaseRoute] = (),
    on_startup: Sequence[Callable[[], Awaitable[None]]] = (),
    on_shutdown: Sequence[Callable[[], Awaitable[None]]] = (),
) -> Starlette:
    """The HTTP API of ``orchestrator``, which the app closes when it shuts down (history
    stored, analytics flushed).

    ``auth`` (default: when a ``key_store`` is given) requires an API key of
    ``key_store`` on every ``/v1`` request; each key's tenant scopes its sessions.
    A verified key is trusted for ``key_cache_seconds`` before it is read again (a
    revocation, or another process's spend, is seen within that time). ``redis_url``
    shares rpm/tpm limits between processes. ``models`` are the models
    clients may ask for (default: any; ``GET /v1/models`` lists the orchestrator's).
    ``extra_routes`` are added after the API's own (the dashboard's page and WebSocket
    mount here). ``on_startup`` are awaited before the first request (the dashboard's
    feed); ``on_shutdown`` after the orchestrator is closed (MCP connections, the
    dashboard).
    """
    auth = key_store is not None if auth is None else auth
    if auth and key_store is None:
        raise ValueError("auth needs a key_store")
    state = ServerState(
        orchestrator=orchestrator,
        key_store=key_store,
        limits=KeyLimits(redis_url, fail_open=rate_limit_fail_open),
        auth=auth,
        models=models,
        max_body_bytes=max_body_bytes,
        key_cache_seconds=key_cache_seconds,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await orchestrator.session_store.open()
        for start in on_startup:
            await start()
        state.ready = True
        try:
            yield
        finally:
            state.draining = True
            await orchestrator.aclose()
            for close in on_shutdown:
                try:
                    await close()
                except Exception:
                    logger.exception("error while shutting down")
            await state.limits.aclose()
            if key_store is not None:
                await key_store.aclose()

    routes: list[BaseRoute] = [
        *api_routes(),
        Route("/openapi.json", _openapi, methods=["GET"]),
        # Mounted by other packages (the dashboard, its WebSocket) after the API's routes.
        *extra_routes,
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error},
    )
    app.state.victor = state
    app.add_middleware(DrainingGuard, state=state)
    return app


def server_state(app: Starlette) -> ServerState:
    """The state of an app made by :func:`create_app` (to mark it draining)."""
    return app.state.victor


__all__ += ["APIError", "server_state"]
