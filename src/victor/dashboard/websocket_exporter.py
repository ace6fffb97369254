"""Recipe 7's exporter: every batch of events broadcast to the connected WebSocket
clients as a JSON list of ``event.model_dump()`` (on the ``websockets`` library).

A page written for the recipe connects to ``ws://localhost:8765`` and reads lists of
events. Clients send nothing, unless the exporter has a ``token``: then their first
message must be that token, within ``hello_timeout`` seconds, or the connection closes
with code 1008. Listening beyond loopback requires a token. A client that stops reading
is closed once ``max_buffer`` bytes wait for it: it never holds up the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import Sequence
from typing import Any

import orjson

from victor.analytics.exporters.base import BaseAnalyticsExporter
from victor.dashboard.protocol import POLICY_VIOLATION, is_loopback
from victor.protocols.analytics import AnalyticsEvent, ExportResult


class WebSocketAnalyticsExporter(BaseAnalyticsExporter):
    """Broadcasts events to WebSocket clients at ``ws://host:port`` (``port=0``: a free
    port, read back from :attr:`port` after :meth:`start`). The server starts with the
    first batch, or with ``await exporter.start()``."""

    name = "websocket"

    def __init__(
        self,
        host: str = "localhost",
        port: int = 8765,
        *,
        token: str | None = None,
        hello_timeout: float = 5.0,
        max_buffer: int = 4 * 1024 * 1024,
    ) -> None:
        if not token and not is_loopback(host):
            raise ValueError(f"WebSocketAnalyticsExporter on {host}: give it a token")
        self.host, self.port = host, port
        self.token = token
        self.hello_timeout, self.max_buffer = hello_timeout, max_buffer
        self.clients: set[Any] = set()
        self._server: Any = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        from websockets.asyncio.server import serve

        async with self._lock:
            if self._server is None:
                self._server = await serve(self._client, self.host, self.port, compression=None)
                self.port = next(iter(self._server.sockets)).getsockname()[1]

    async def _client(self, connection: Any) -> None:
        if self.token is not None:
            try:
                given = await asyncio.wait_for(connection.recv(), self.hello_timeout)
            except Exception:
                given = None
            expected = self.token.encode()
            if not isinstance(given, str) or not hmac.compare_digest(given.encode(), expected):
                await connection.close(POLICY_VIOLATION, "invalid token")
                return
        self.clients.add(connection)
        try:
            await connection.wait_closed()
        finally:
            self.clients.discard(connection)

    async def export(self, events: Sequence[AnalyticsEvent]) -> ExportResult:
        from websockets.asyncio.server import broadcast

        await self.start()
        if self.clients:
            message = orjson.dumps(
                [event.model_dump(mode="json") for event in events], default=str
            ).decode()
            ready = []
            for connection in list(self.clients):
                transport = connection.transport
                if transport is not None and transport.get_write_buffer_size() > self.max_buffer:
                    self.clients.discard(connection)  # too slow: closed, it may reconnect
                    with contextlib.suppress(Exception):
                        transport.abort()
                    continue
                ready.append(connection)
            broadcast(ready, message)
        return ExportResult(success=True, exported_count=len(events))

    async def shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
