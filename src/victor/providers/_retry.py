"""Retry policy shared by the real providers: which failures to retry, and when.

The official SDKs each retry on their own, with their own rules and silently. Victor turns
their retries off (``max_retries=0`` on the SDK client) and retries here instead, so every
provider backs off the same way, honours the server's ``Retry-After`` advice the same way,
logs every retry, and can be made instant in tests by injecting ``sleep``.

Only errors whose :attr:`~victor.errors.ProviderError.retryable` is true are retried: rate
limits (429), server errors (5xx), dropped connections and timeouts. A streamed call is
retried only while nothing has been yielded to the caller yet, because text already shown
to a user cannot be taken back. :func:`error_for_status` and :func:`error_for_type` are
where an HTTP status or an error type becomes a typed, retryable-or-not error.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TypeVar

from victor.errors import (
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderError,
    ProviderRateLimitError,
    ProviderResponseError,
    ProviderServerError,
    ProviderTimeoutError,
)

__all__ = ["ERROR_TYPES", "RetryPolicy", "error_for_status", "error_for_type", "parse_retry_after"]

logger = logging.getLogger("victor.providers")

T = TypeVar("T")

#: Called before each retry with the error, the retry number (1 for the first retry) and
#: the delay about to be slept, in seconds.
RetryHook = Callable[[ProviderError, int, float], None]


def parse_retry_after(
    headers: Mapping[str, str] | None, *, now: float | None = None
) -> float | None:
    """The server's advised wait in seconds, or None when it gave none we can read.

    ``retry-after-ms`` (OpenAI, Anthropic) is more precise and wins over ``retry-after``,
    which RFC 9110 allows to be either a number of seconds or an HTTP date.
    """
    if not headers:
        return None
    # httpx headers are case-insensitive; a plain dict from a test may not be.
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms is not None:
        try:
            millis = float(raw_ms)
        except ValueError:
            pass
        else:
            if millis >= 0:
                return millis / 1000.0
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        current = time.time() if now is None else now
        return max(0.0, when.timestamp() - current)
    return seconds if seconds >= 0 else None


# Error ``type`` strings found in error bodies (OpenAI and Anthropic vocabularies). They
# classify errors that arrive without a meaningful HTTP status, e.g. inside a stream.
ERROR_TYPES: dict[str, type[ProviderError]] = {
    "rate_limit_error": ProviderRateLimitError,
    "rate_limit_exceeded": ProviderRateLimitError,
    "insufficient_quota": ProviderAuthError,
    "authentication_error": ProviderAuthError,
    "permission_error": ProviderAuthError,
    "invalid_api_key": ProviderAuthError,
    "invalid_request_error": ProviderBadRequestError,
    "not_found_error": ProviderBadRequestError,
    "request_too_large": ProviderBadRequestError,
    "overloaded_error": ProviderServerError,
    "api_error": ProviderServerError,
    "server_error": ProviderServerError,
    "timeout_error": ProviderTimeoutError,
}


def error_for_status(
    status: int,
    message: str,
    *,
    provider: str,
    headers: Mapping[str, str] | None = None,
    auth_hint: str = "",
    error_type: str | None = None,
) -> ProviderError:
    """The typed error for an HTTP error status.

    408 and 409 are retryable (the request timed out on the server, or hit a transient
    conflict) as the SDKs themselves treat them; other 4xx are the caller's fault and are
    not. A 429 for an exhausted quota (``insufficient_quota``) is not retryable either:
    the quota will not come back within seconds. ``Retry-After`` is read on every status,
    since 503s carry it too.
    """
    retry_after = parse_retry_after(headers)
    text = f"{provider}: HTTP {status}: {message}"
    error: ProviderError
    if status in (401, 403, 402):
        error = ProviderAuthError(f"{text}{auth_hint}", provider=provider, status_code=status)
    elif status == 429:
        error = ProviderRateLimitError(
            text,
            provider=provider,
            status_code=status,
            retry_after=retry_after,
            retryable=error_type != "insufficient_quota",
        )
    elif status == 408:
        error = ProviderTimeoutError(text, provider=provider, status_code=status)
    elif status == 409:
        error = ProviderError(text, provider=provider, status_code=status, retryable=True)
    elif status >= 500:
        error = ProviderServerError(text, provider=provider, status_code=status)
    elif 400 <= status < 500:
        error = ProviderBadRequestError(text, provider=provider, status_code=status)
    else:
        error = ProviderResponseError(text, provider=provider, status_code=status)
    if retry_after is not None and not isinstance(error, ProviderRateLimitError):
        error.retry_after = retry_after  # type: ignore[attr-defined]  # read by RetryPolicy
    return error


def error_for_type(error_type: str | None, message: str, *, provider: str) -> ProviderError:
    """The typed error for an error reported without an HTTP error status (mid-stream).

    Unknown types count as server errors: a stream that breaks off with an error event is
    almost always the provider's trouble, not the request's.
    """
    cls = ERROR_TYPES.get(error_type or "", ProviderServerError)
    return cls(f"{provider}: {error_type or 'error'}: {message}", provider=provider)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a provider retries a failed model call.

    Backoff is exponential with *full jitter* (a uniform draw between 0 and
    ``min(max_delay, base_delay * 2**n)``), which spreads the retries of many clients that
    failed together instead of having them hit the server again in lockstep.

    When a rate-limited (or overloaded) server says how long to wait, that advice is used
    as is, as long as it is at most ``max_retry_after`` seconds. Advice longer than that
    makes the call fail at once: waiting minutes inside one chat turn helps nobody, and a
    :class:`~victor.providers.fallback.FallbackProvider` can move on to another provider.

    ``sleep`` and ``rng`` are injectable so tests run instantly and deterministically;
    ``on_retry`` lets an application count or trace retries.
    """

    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 60.0
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False)
    rng: Callable[[], float] = field(default=random.random, repr=False)
    on_retry: RetryHook | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("retry delays must be >= 0")

    def backoff(self, retry_number: int) -> float:
        """The jittered delay before retry ``retry_number`` (1-based), ignoring server advice."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** max(0, retry_number - 1)))
        return self.rng() * ceiling

    def delay_for(self, error: ProviderError, retry_number: int) -> float | None:
        """Seconds to wait before retry ``retry_number``, or None when we must not retry."""
        if not error.retryable or retry_number > self.max_retries:
            return None
        # Rate limits carry the advice by contract; 503s get it set by the error mapping.
        advice = getattr(error, "retry_after", None)
        if advice is not None:
            if advice > self.max_retry_after:
                return None
            return float(advice)
        return self.backoff(retry_number)

    async def _wait_or_raise(self, error: ProviderError, retry_number: int) -> None:
        delay = self.delay_for(error, retry_number)
        if delay is None:
            raise error
        logger.warning(
            "%s call failed (%s: %s); retry %d/%d in %.2fs",
            error.provider or "provider",
            type(error).__name__,
            error,
            retry_number,
            self.max_retries,
            delay,
        )
        if self.on_retry is not None:
            self.on_retry(error, retry_number, delay)
        await self.sleep(delay)

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Await ``fn()`` and retry it on retryable :class:`ProviderError`\\ s."""
        retry_number = 0
        while True:
            try:
                return await fn()
            except ProviderError as error:
                retry_number += 1
                await self._wait_or_raise(error, retry_number)

    async def stream(self, factory: Callable[[], AsyncIterator[T]]) -> AsyncIterator[T]:
        """Yield from ``factory()``, restarting it on a retryable error before the first item.

        Once an item has reached the caller, an error is raised as is: replaying the
        stream would show the caller the same text twice.
        """
        retry_number = 0
        while True:
            iterator = factory()
            yielded = False
            try:
                while True:
                    try:
                        item = await anext(iterator)
                    except StopAsyncIteration:
                        return
                    except ProviderError as error:
                        if yielded:
                            raise
                        retry_number += 1
                        await self._wait_or_raise(error, retry_number)
                        break
                    yielded = True
                    yield item
            finally:
                aclose = getattr(iterator, "aclose", None)
                if aclose is not None:
                    await aclose()
