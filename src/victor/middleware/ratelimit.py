"""``RateLimitMiddleware``: a token bucket per key (tenant, session), in memory or in Redis."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from victor.errors import RateLimiterUnavailable, RateLimitExceeded
from victor.protocols.middleware import Request, RequestMiddleware

logger = logging.getLogger(__name__)

__all__ = [
    "InMemoryTokenBucket",
    "RateLimitMiddleware",
    "RedisTokenBucket",
    "TokenBucket",
    "default_key",
]


class TokenBucket(Protocol):
    """Buckets of ``burst`` tokens refilled at ``rate`` tokens a second, one per key."""

    async def acquire(self, key: str, cost: float = 1.0) -> float:
        """Take ``cost`` tokens from ``key``'s bucket: 0.0 when taken, otherwise the
        seconds until they will be there (nothing taken)."""
        ...

    async def aclose(self) -> None: ...


def _check(rate: float, burst: float) -> None:
    for name, value in (("rate", rate), ("burst", burst)):
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise TypeError(f"{name} must be a number, not {value!r}")
    if rate <= 0:
        raise ValueError(f"rate must be > 0 requests a second, not {rate}")
    if burst < 1:
        raise ValueError(f"burst must be >= 1, not {burst}")


class InMemoryTokenBucket:
    """Token buckets in this process; the least recently used are forgotten past
    ``max_keys`` (a forgotten bucket starts full again)."""

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        burst = rate if burst is None else burst
        _check(rate, burst)
        self.rate = rate
        self.burst = float(burst)
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, time)

    async def acquire(self, key: str, cost: float = 1.0) -> float:
        now = self.clock()
        state = self._buckets.pop(key, None)  # re-inserted last: dict order is LRU order
        if state is None:
            tokens = self.burst
            if len(self._buckets) >= self.max_keys:
                del self._buckets[next(iter(self._buckets))]
        else:
            tokens = min(self.burst, state[0] + (now - state[1]) * self.rate)
        if tokens >= cost:
            self._buckets[key] = (tokens - cost, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (cost - tokens) / self.rate

    async def aclose(self) -> None:
        self._buckets.clear()


# Atomic refill-and-take, on the server's clock (hosts' clocks need not agree). Returns
# the wait in seconds as a string (a Lua number would come back truncated to an integer).
TOKEN_BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
else
  wait = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class RedisTokenBucket:
    """Token buckets in Redis, shared by every process and host using the same
    ``prefix``: one atomic Lua script per check (redis-py runs it by its SHA).

    ``redis`` is a ``redis.asyncio.Redis`` client or a URL (the client is then created
    here, with short timeouts, and closed by :meth:`aclose`). When Redis cannot be reached
    the bucket fails open (allows the request) or closed (raises
    :class:`~victor.errors.RateLimiterUnavailable`) as ``fail_open`` says, logs a warning
    once per outage, and tries Redis again at most every ``retry_interval`` seconds.
    """

    def __init__(
        self,
        redis: Any,
        rate: float,
        burst: float | None = None,
        *,
        prefix: str = "victor:ratelimit:",
        fail_open: bool = True,
        retry_interval: float = 1.0,
        timeout: float = 0.5,
    ) -> None:
        burst = rate if burst is None else burst
        _check(rate, burst)
        try:
            import redis.asyncio as redis_asyncio
            from redis.exceptions import ConnectionError as RedisConnectionError
            from redis.exceptions import TimeoutError as RedisTimeoutError
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "RedisTokenBucket needs redis-py: pip install 'victor-orchestrator[redis]'"
            ) from exc
        self._owns_client = isinstance(redis, str)
        if isinstance(redis, str):
            redis = redis_asyncio.Redis.from_url(
                redis, socket_timeout=timeout, socket_connect_timeout=timeout
            )
        self.client = redis
        self.rate = rate
        self.burst = float(burst)
        self.prefix = prefix
        self.fail_open = fail_open
        self.retry_interval = retry_interval
        self._script = redis.register_script(TOKEN_BUCKET_LUA)
        self._unreachable = (RedisConnectionError, RedisTimeoutError, OSError)
        self._down_until = 0.0
        self._down = False

    async def acquire(self, key: str, cost: float = 1.0) -> float:
        if self._down and time.monotonic() < self._down_until:
            return self._unavailable(key, None)
        try:
            wait = await self._script(keys=[self.prefix + key], args=[self.rate, self.burst, cost])
        except self._unreachable as exc:
            return self._unavailable(key, exc)
        if self._down:
            self._down = False
            logger.warning("rate limiter: Redis is reachable again; limiting resumed")
        return float(wait)

    def _unavailable(self, key: str, exc: BaseException | None) -> float:
        if exc is not None:
            self._down_until = time.monotonic() + self.retry_interval
            if not self._down:
                self._down = True
                policy = (
                    "allowing requests (fail open)"
                    if self.fail_open
                    else ("refusing requests (fail closed)")
                )
                logger.warning("rate limiter: Redis unreachable (%s); %s", exc, policy)
        if self.fail_open:
            return 0.0
        raise RateLimiterUnavailable(
            "the rate limiter's Redis is unreachable; requests are refused until it is back",
            retry_after=self.retry_interval,
            key=key,
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.aclose()


def default_key(request: Request) -> str:
    """Limit per tenant; without a tenant, per session; without either, one shared key."""
    if request.tenant_id:
        return f"tenant:{request.tenant_id}"
    if request.session_id:
        return f"session:{request.session_id}"
    return "anonymous"


class RateLimitMiddleware(RequestMiddleware):
    """Refuses a request over its limit with :class:`~victor.errors.RateLimitExceeded`
    (``retry_after`` in seconds): ``rate`` requests a second per key, bursts of ``burst``.

    The key is ``key(request)`` (per tenant, else per session, by default). Buckets are in
    this process, or in Redis (``redis=`` a URL or a ``redis.asyncio`` client) to share the
    limit between processes; ``fail_open`` decides what happens when Redis is down. Or pass
    any :class:`TokenBucket` as ``bucket``.
    """

    def __init__(
        self,
        rate: float = 1.0,
        burst: float | None = None,
        *,
        key: Callable[[Request], str] = default_key,
        redis: Any = None,
        prefix: str = "victor:ratelimit:",
        fail_open: bool = True,
        bucket: TokenBucket | None = None,
    ) -> None:
        if bucket is None:
            if redis is not None:
                bucket = RedisTokenBucket(redis, rate, burst, prefix=prefix, fail_open=fail_open)
            else:
                bucket = InMemoryTokenBucket(rate, burst)
        self.bucket = bucket
        self.key = key

    async def handle(self, orchestrator: Any, request: Request) -> None:
        key = self.key(request)
        wait = await self.bucket.acquire(key)
        if wait > 0:
            raise RateLimitExceeded(
                f"rate limit exceeded for {key}; retry in {wait:.2f} s",
                retry_after=wait,
                key=key,
            )
        return None

    async def aclose(self) -> None:
        await self.bucket.aclose()
