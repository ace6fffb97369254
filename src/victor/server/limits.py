"""What a key may do: its models, its rpm and tpm, its spend budget.

rpm and tpm are token buckets of :mod:`victor.middleware.ratelimit` (in this process, or
in Redis so that every process shares them): a key of ``rpm`` requests a minute refills
``rpm / 60`` a second and bursts to ``rpm``. tpm takes the prompt's estimated tokens
before the turn and the rest of the turn's tokens after it (down to an empty bucket).
The budget is checked before a turn against the key's spend this period (added up in
the key store after each turn), so concurrent turns may overshoot it by their own cost.
"""

from __future__ import annotations

from typing import Any

from victor.middleware.ratelimit import InMemoryTokenBucket, RedisTokenBucket, TokenBucket
from victor.server.errors import INSUFFICIENT_QUOTA, PERMISSION, RATE_LIMIT, APIError
from victor.server.keys import ApiKey

__all__ = ["KeyLimits", "estimate_tokens"]


def estimate_tokens(text: str) -> int:
    """A prompt's tokens, roughly (4 characters a token), at least 1."""
    return max(1, len(text) // 4)


class KeyLimits:
    """Enforces keys' limits; buckets in Redis when ``redis_url`` is given."""

    def __init__(self, redis_url: str | None = None, *, fail_open: bool = True) -> None:
        self.redis_url = redis_url
        self.fail_open = fail_open
        self._buckets: dict[tuple[str, int], TokenBucket] = {}
        self._client: Any = None

    def _bucket(self, kind: str, per_minute: int) -> TokenBucket:
        bucket = self._buckets.get((kind, per_minute))
        if bucket is None:
            rate = per_minute / 60.0
            if self.redis_url is None:
                bucket = InMemoryTokenBucket(rate, per_minute)
            else:
                if self._client is None:
                    import redis.asyncio as redis_asyncio

                    self._client = redis_asyncio.Redis.from_url(
                        self.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5
                    )
                bucket = RedisTokenBucket(
                    self._client,
                    rate,
                    per_minute,
                    prefix=f"victor:server:{kind}:",
                    fail_open=self.fail_open,
                )
            self._buckets[(kind, per_minute)] = bucket
        return bucket

    @staticmethod
    def check_model(key: ApiKey, model: str) -> None:
        if key.allowed_models is not None and model not in key.allowed_models:
            raise APIError(
                403,
                f"this key may not use model {model!r} (allowed: {', '.join(key.allowed_models)})",
                type=PERMISSION,
                code="model_not_allowed",
                param="model",
            )

    async def before(self, key: ApiKey, prompt: str) -> None:
        """Refuse the turn (429) when a limit or the budget is reached."""
        if key.budget_usd is not None and key.spent_usd >= key.budget_usd:
            raise APIError(
                429,
                f"this key's budget of {key.budget_usd:g} USD per {key.budget_period} is "
                f"spent ({key.spent_usd:.4f} USD)",
                type=INSUFFICIENT_QUOTA,
                code="budget_exceeded",
            )
        if key.rpm is not None:
            await self._take("rpm", key, key.rpm, 1)
        if key.tpm is not None:
            await self._take("tpm", key, key.tpm, min(key.tpm, estimate_tokens(prompt)))

    async def after(self, key: ApiKey, prompt: str, total_tokens: int) -> None:
        """Count the turn's tokens beyond the estimate taken before it."""
        if key.tpm is None:
            return
        rest = min(key.tpm, total_tokens - min(key.tpm, estimate_tokens(prompt)))
        if rest <= 0:
            return
        bucket = self._bucket("tpm", key.tpm)
        wait = await bucket.acquire(key.id, rest)
        if wait > 0:  # fewer tokens left than the turn used: take what is there
            left = int(rest - wait * key.tpm / 60.0)
            if left >= 1:
                await bucket.acquire(key.id, left)

    async def _take(self, kind: str, key: ApiKey, per_minute: int, cost: int) -> None:
        wait = await self._bucket(kind, per_minute).acquire(key.id, cost)
        if wait > 0:
            raise APIError(
                429,
                f"this key's {kind} limit of {per_minute} is reached; retry in {wait:.1f} s",
                type=RATE_LIMIT,
                code=f"{kind}_limit_exceeded",
                headers={"Retry-After": str(max(1, round(wait + 0.5)))},
            )

    async def aclose(self) -> None:
        for bucket in self._buckets.values():
            await bucket.aclose()
        self._buckets.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
