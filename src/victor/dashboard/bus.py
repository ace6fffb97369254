"""How events reach the hubs: directly in one process, or through Redis Pub/Sub so that
the dashboards of every process see the events of all.

:class:`RedisBus` publishes each batch on a channel and feeds its hub from its
subscription (its own batches come back that way too). When Redis goes away it delivers
to its own hub directly, tells the pages (``redis-down``), and reconnects in the
background; once subscribed again it goes back to Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import orjson

from victor.dashboard.hub import Hub
from victor.dashboard.protocol import IN_PROCESS, REDIS, REDIS_DOWN

logger = logging.getLogger("victor.dashboard")

DEFAULT_CHANNEL = "victor:analytics"


class LocalBus:
    """In-process fan-out: a batch goes straight to the hub."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        hub.set_status(IN_PROCESS)

    async def publish(self, events: Sequence[dict[str, Any]]) -> None:
        self.hub.publish(events)

    async def start(self) -> None:
        """Nothing to start."""

    async def aclose(self) -> None:
        """Nothing to release."""


class RedisBus:
    """Fan-out across processes through Redis Pub/Sub (redis-py, the ``[redis]`` extra)."""

    def __init__(
        self,
        hub: Hub,
        url: str,
        *,
        channel: str = DEFAULT_CHANNEL,
        retry_interval: float = 1.0,
        timeout: float = 2.0,
    ) -> None:
        import redis.asyncio as redis

        self.hub = hub
        self.url, self.channel = url, channel
        self.retry_interval = retry_interval
        self._client = redis.Redis.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=timeout
        )
        self._listener = redis.Redis.from_url(url, socket_connect_timeout=timeout)
        self.up = False
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def start(self, wait: float = 2.0) -> None:
        """Subscribe in the background; wait up to ``wait`` seconds for it."""
        if self._task is None:
            self.hub.set_status(REDIS_DOWN, "connecting")
            self._task = asyncio.create_task(self._listen(), name="victor-dashboard-redis")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), wait)

    async def publish(self, events: Sequence[dict[str, Any]]) -> None:
        if self.up:
            try:
                await self._client.publish(self.channel, orjson.dumps(list(events), default=str))
                return
            except Exception as exc:  # any failure of Redis: deliver here, say so
                self._down(exc)
        self.hub.publish(events)

    async def _listen(self) -> None:
        while True:
            try:
                async with self._listener.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    self.up = True
                    self._subscribed.set()
                    self.hub.set_status(REDIS, self._where())
                    logger.info("dashboard fan-out through Redis %s", self._where())
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._deliver(message["data"])
                    raise ConnectionError("subscription ended")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._down(exc)
            await asyncio.sleep(self.retry_interval)

    def _deliver(self, payload: bytes) -> None:
        try:
            events = orjson.loads(payload)
        except orjson.JSONDecodeError:
            logger.warning("dashboard: a message on %s is not JSON; ignored", self.channel)
            return
        if isinstance(events, list):
            self.hub.publish(events)

    def _down(self, exc: BaseException) -> None:
        if self.up or self.hub.status["fanout"] != REDIS_DOWN:
            logger.warning("dashboard: Redis unreachable (%s); in-process fan-out only", exc)
        self.up = False
        self._subscribed.clear()
        self.hub.set_status(REDIS_DOWN, f"{self._where()}: {type(exc).__name__}")

    def _where(self) -> str:
        host = self._listener.connection_pool.connection_kwargs.get("host", "?")
        port = self._listener.connection_pool.connection_kwargs.get("port", "?")
        return f"{host}:{port}"

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._client.aclose()
        await self._listener.aclose()
