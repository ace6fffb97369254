"""Running the app with uvicorn; a signal to stop marks it draining at once (new
requests get 503 while the ones in flight finish), then the app shuts down (history
stored, analytics flushed)."""

from __future__ import annotations

import logging
from types import FrameType

import uvicorn
from starlette.applications import Starlette

from victor.server.app import server_state

logger = logging.getLogger(__name__)

__all__ = ["DrainingServer", "serve_app"]


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: Starlette) -> None:
        super().__init__(config)
        self.victor_app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        server_state(self.victor_app).draining = True
        super().handle_exit(sig, frame)


async def serve_app(
    app: Starlette, host: str, port: int, *, graceful_timeout: float = 30.0
) -> None:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=graceful_timeout,
        lifespan="on",
    )
    await DrainingServer(config, app).serve()
