"""Running a dashboard with uvicorn (``victor dashboard``, ``victor demo --dashboard``)."""

from __future__ import annotations

import asyncio
import socket

from victor.dashboard.app import Dashboard, check_binding, create_dashboard_app


class DashboardServer:
    """A uvicorn server for ``dashboard`` on ``host:port`` (port 0: a free one), started
    and stopped within the running event loop."""

    def __init__(self, dashboard: Dashboard, host: str = "127.0.0.1", port: int = 8050) -> None:
        import uvicorn

        check_binding(host, dashboard.token)
        self.dashboard = dashboard
        self.host = host
        self._socket = socket.create_server((host, port), reuse_port=False)
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(
            create_dashboard_app(dashboard),
            log_level="warning",
            ws_ping_interval=20.0,
            ws_per_message_deflate=False,
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/dashboard"

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        while not self._server.started:
            if self._task.done():
                await self._task  # raises what stopped it
                raise RuntimeError("the dashboard server stopped at start")
            await asyncio.sleep(0.02)

    async def wait(self) -> None:
        if self._task is not None:
            await self._task

    async def aclose(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
            self._task = None


async def serve_dashboard(dashboard: Dashboard, host: str, port: int) -> DashboardServer:
    server = DashboardServer(dashboard, host, port)
    await server.start()
    return server
