"""The dashboard as a Starlette application, or as routes to mount in another one.

```python
dashboard = Dashboard(store="analytics.db", token="s3cret")
orchestrator = AgentOrchestrator(..., _analytics_coordinator=AnalyticsCoordinator(
    [SQLiteAnalyticsExporter("analytics.db"), dashboard.exporter()]))
app = create_dashboard_app(dashboard)   # or Starlette(routes=dashboard.routes(), ...)
```

The page is at ``/dashboard``, its WebSocket at ``/ws/analytics``. Events arrive through
:meth:`Dashboard.exporter` (in the process that chats), or by following the store
(``tail=True``: a dashboard of its own). With ``redis_url`` every process's events reach
every process's pages. A host application that mounts :meth:`Dashboard.routes` calls
:meth:`Dashboard.start` and :meth:`Dashboard.aclose` in its lifespan.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from victor.dashboard.bus import LocalBus, RedisBus
from victor.dashboard.connection import serve_client
from victor.dashboard.feed import DashboardExporter, StoreTail
from victor.dashboard.hub import Hub
from victor.dashboard.protocol import PAGE_PATH, STATIC_PATH, WS_PATH, is_loopback
from victor.dashboard.store import EventStore
from victor.dashboard.variants import ExperimentPanel

STATIC = Path(__file__).parent / "static"
logger = logging.getLogger("victor.dashboard")


class Dashboard:
    """The hub, its feed and its pages.

    ``store``: the analytics store the snapshot (and the A/B panel) is read from (a
    SQLite path or ``postgresql://...``; None: no snapshot, no panel). ``token``: what a
    page must send in its hello (required when serving beyond loopback, see
    :func:`check_binding`). ``window_s``: how much history a page gets on connect.
    ``tail``: follow the store instead of (or as well as) an exporter.
    """

    def __init__(
        self,
        store: str | Path | None = None,
        *,
        token: str | None = None,
        redis_url: str | None = None,
        tail: bool = False,
        window_s: float = 900.0,
        snapshot_limit: int = 20_000,
        hello_timeout: float = 5.0,
        queue_size: int = 512,
        experiments_interval: float = 2.0,
    ) -> None:
        self.hub = Hub(queue_size=queue_size)
        self.token = token or None
        self.window_s, self.snapshot_limit = window_s, snapshot_limit
        self.hello_timeout = hello_timeout
        self.bus: LocalBus | RedisBus = (
            RedisBus(self.hub, redis_url) if redis_url else LocalBus(self.hub)
        )
        self.store_url = store
        self.store = EventStore(store) if store is not None else None
        self.tail = StoreTail(self.store, self.bus) if tail and self.store else None
        self.panel = (
            ExperimentPanel(self.hub, store, interval=experiments_interval)
            if store is not None
            else None
        )

    def exporter(self) -> DashboardExporter:
        """An analytics exporter that sends every batch to the pages."""
        return DashboardExporter(self.bus)

    async def snapshot(self) -> list[dict[str, Any]]:
        if self.store is None:
            return []
        return await self.store.since(time.time() - self.window_s, self.snapshot_limit)

    def routes(self) -> list[BaseRoute]:
        return [
            Route(PAGE_PATH, self._page),
            Route(PAGE_PATH + "/", self._redirect),
            Mount(STATIC_PATH, StaticFiles(directory=STATIC), name="dashboard-static"),
            WebSocketRoute(WS_PATH, self._websocket),
        ]

    async def start(self) -> None:
        await self.bus.start()
        if self.panel is not None:
            try:  # the experiments already in the store's recent window
                self.panel.observe(await self.snapshot())
            except Exception as exc:
                logger.warning("dashboard: cannot read %s yet: %s", self.store_url, exc)
            await self.panel.start()
        if self.tail is not None:
            await self.tail.start()

    async def aclose(self) -> None:
        for part in (self.tail, self.panel, self.bus, self.store):
            if part is not None:
                await part.aclose()

    async def _page(self, request: Request) -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def _redirect(self, request: Request) -> RedirectResponse:
        return RedirectResponse(PAGE_PATH)

    async def _websocket(self, websocket: WebSocket) -> None:
        await serve_client(
            websocket,
            self.hub,
            token=self.token,
            snapshot=self.snapshot,
            window_s=self.window_s,
            hello_timeout=self.hello_timeout,
        )


def check_binding(host: str, token: str | None) -> None:
    """Refuse to serve beyond loopback without a token."""
    if not token and not is_loopback(host):
        raise ValueError(
            f"the dashboard listens on {host}, beyond this machine: give it a token (--token)"
        )


def create_dashboard_app(dashboard: Dashboard) -> Starlette:
    """A Starlette application serving ``dashboard`` (started and closed with the app)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await dashboard.start()
        try:
            yield
        finally:
            await dashboard.aclose()

    return Starlette(routes=dashboard.routes(), lifespan=lifespan)
