"""One page's WebSocket: the hello (and its token), the snapshot or the resumed gap, then
live frames from the hub until the page leaves or falls behind."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from victor.dashboard.hub import Hub, encode
from victor.dashboard.protocol import (
    HELLO,
    POLICY_VIOLATION,
    SNAPSHOT,
    TRY_AGAIN_LATER,
    WELCOME,
)

logger = logging.getLogger("victor.dashboard")

Snapshot = Callable[[], Awaitable[list[dict[str, Any]]]]


async def _hello(websocket: WebSocket, wait_s: float) -> dict[str, Any] | None:
    """The first message, if it comes in time and is a hello."""
    try:
        text = await asyncio.wait_for(websocket.receive_text(), wait_s)
        message = orjson.loads(text)
    except (TimeoutError, WebSocketDisconnect, orjson.JSONDecodeError, KeyError, RuntimeError):
        return None
    if not isinstance(message, dict) or message.get("type") != HELLO:
        return None
    return message


def token_ok(expected: str | None, given: Any) -> bool:
    """No token configured: anything goes (loopback only); else an exact match."""
    if expected is None:
        return True
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


async def serve_client(
    websocket: WebSocket,
    hub: Hub,
    *,
    token: str | None,
    snapshot: Snapshot | None,
    window_s: float,
    hello_timeout: float = 5.0,
    recent_s: float = 10.0,
) -> None:
    await websocket.accept()
    hello = await _hello(websocket, hello_timeout)
    if hello is None or not token_ok(token, hello.get("token")):
        reason = "hello expected first" if hello is None else "invalid token"
        with contextlib.suppress(Exception):
            await websocket.close(POLICY_VIOLATION, reason)
        return
    sender: asyncio.Task[None] | None = None

    def on_drop() -> None:
        if sender is not None:
            sender.cancel()

    sub, resumed = hub.subscribe(
        epoch=hello.get("epoch"), last_seq=hello.get("last_seq"), on_drop=on_drop
    )
    try:
        await websocket.send_text(
            encode(
                {
                    "type": WELCOME,
                    "epoch": hub.epoch,
                    "seq": hub.seq,
                    "resumed": resumed,
                    "window_s": window_s,
                    "server_time": time.time() * 1000,
                }
            )
        )
        await websocket.send_text(encode(hub.status))
        if not resumed:
            events = await _snapshot(snapshot)
            await websocket.send_text(encode({"type": SNAPSHOT, "events": events}))
            for frame in hub.recent(recent_s):
                await websocket.send_text(frame)
        if hub.experiments is not None:
            await websocket.send_text(encode(hub.experiments))
        sender = asyncio.create_task(_send(websocket, sub.queue))
        receiver = asyncio.create_task(_drain(websocket))
        await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
        for task in (sender, receiver):
            task.cancel()
        await asyncio.gather(sender, receiver, return_exceptions=True)
        if sub.dropped:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(websocket.close(TRY_AGAIN_LATER, "too slow"), 1.0)
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass  # the page left
    finally:
        hub.unsubscribe(sub)


async def _snapshot(snapshot: Snapshot | None) -> list[dict[str, Any]]:
    """The recent window from the store; empty (and logged) when the store cannot be
    read: the page still gets live events."""
    if snapshot is None:
        return []
    try:
        return await snapshot()
    except Exception as exc:
        logger.warning("dashboard: no snapshot, the store cannot be read: %s", exc)
        return []


async def _send(websocket: WebSocket, queue: asyncio.Queue[str]) -> None:
    while True:
        frame = await queue.get()
        await websocket.send_text(frame)


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) what the page sends, until it disconnects."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
