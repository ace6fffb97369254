"""``victor dashboard``: the live analytics page over an analytics store."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

from rich.console import Console

from victor.errors import ConfigError


def dashboard_url(url: str, token: str | None) -> str:
    """The page's address; the token rides in the fragment, which browsers never send."""
    return f"{url}#token={token}" if token else url


async def start_server(dashboard: Any, host: str, port: int) -> Any:
    """A started :class:`~victor.dashboard.serve.DashboardServer`; a refused host or a
    port that cannot be bound is one :class:`ConfigError` line."""
    from victor.dashboard.serve import DashboardServer

    try:  # binds the socket
        server = DashboardServer(dashboard, host, port)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    await server.start()
    return server


async def _until_interrupted() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def run_dashboard(
    *, db: str | None, host: str, port: int, token: str | None, redis_url: str | None
) -> None:
    from victor.dashboard.app import Dashboard
    from victor.dashboard.store import default_store

    console = Console()
    store = db or str(default_store())
    dashboard = Dashboard(store, token=token, redis_url=redis_url, tail=True)
    server = await start_server(dashboard, host, port)
    console.print(
        f"Dashboard of {store} at [bold]{dashboard_url(server.url, token)}[/bold] (Ctrl-C to stop)",
        highlight=False,
        soft_wrap=True,
    )
    try:
        await _until_interrupted()
    finally:
        await server.aclose()
