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

Timeouts are told apart by phase. A timeout while connecting means the request never
reached the server, so it is retried like any connection failure; a timeout while waiting
for the answer means the server may have worked (and billed) the whole generation, so it
is retried at most ``max_read_timeout_retries`` times (once by default). ``total_timeout``
bounds a whole call, retries and back-off included.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TypeVar

from victor.errors import (
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderContextLengthError,
    ProviderError,
    ProviderModelNotFoundError,
    ProviderRateLimitError,
    ProviderResponseError,
    ProviderServerError,
    ProviderTimeoutError,
)

__all__ = [
    "ERROR_TYPES",
    "RetryPolicy",
    "error_for_status",
    "error_for_type",
    "is_read_timeout",
    "parse_retry_after",
]

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
    "model_not_found": ProviderModelNotFoundError,
    "context_length_exceeded": ProviderContextLengthError,
    "exceed_context_size_error": ProviderContextLengthError,  # llama.cpp server
    "overloaded_error": ProviderServerError,
    "api_error": ProviderServerError,
    "server_error": ProviderServerError,
    "timeout_error": ProviderTimeoutError,
}


# How servers word a prompt that does not fit: OpenAI and vLLM ("maximum context length"),
# Anthropic ("prompt is too long", "exceed context limit"), llama.cpp ("exceeds the
# available context size"), Mistral ("too large for model with ... context length").
_CONTEXT_LENGTH = re.compile(
    r"maximum context length|prompt is too long|context_length_exceeded|exceed_context_size"
    r"|context[ _-]?(?:length|window|size|limit)s?\b.{0,80}?(?:exceed|too long|too large)"
    r"|(?:exceed(?:s|ed)?|too large for|longer than|more than)\b.{0,80}?"
    r"context[ _-]?(?:length|window|size|limit)",
    re.IGNORECASE | re.DOTALL,
)
# An unknown model, worded by OpenAI/Groq/vLLM ("The model `x` does not exist"), Ollama
# ('model "x" not found'), Mistral ("Invalid model"), OpenRouter ("not a valid model ID").
_MODEL_NOT_FOUND = re.compile(
    r"\bmodel\b.{0,120}?(?:not found|does not exist|is not a valid|not available)"
    r"|(?:invalid|unknown|no such) model|not a valid model",
    re.IGNORECASE | re.DOTALL,
)


def _refusal_class(
    status: int | None, message: str, error_type: str | None
) -> type[ProviderBadRequestError]:
    """The precise class of a refused request.

    Two refusals are about the model rather than the request, and another model may
    accept the same request: an unknown model and a prompt too long for its context
    window. They are told by the error code when the server sends one, else by the
    wording. A 404 naming a model (Anthropic's ``model: claude-x``) is an unknown model.
    """
    known = ERROR_TYPES.get(error_type or "")
    if known is ProviderModelNotFoundError or known is ProviderContextLengthError:
        return known
    if _CONTEXT_LENGTH.search(message):
        return ProviderContextLengthError
    if _MODEL_NOT_FOUND.search(message):
        return ProviderModelNotFoundError
    if (status == 404 or error_type == "not_found_error") and re.search(
        r"\bmodel\b", message, re.IGNORECASE
    ):
        return ProviderModelNotFoundError
    return ProviderBadRequestError


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
        cls = _refusal_class(status, message, error_type)
        error = cls(text, provider=provider, status_code=status)
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
    if issubclass(cls, ProviderBadRequestError):
        cls = _refusal_class(None, message, error_type)
    return cls(f"{provider}: {error_type or 'error'}: {message}", provider=provider)


def is_read_timeout(error: ProviderError) -> bool:
    """Whether ``error`` is a timeout after the request may have reached the model.

    The error mapping sets ``phase`` on the timeouts of the HTTP client: ``"connect"`` or
    ``"pool"`` (nothing was sent), ``"write"`` (the request did not arrive whole) or
    ``"read"``. A timeout of unknown phase counts as a read timeout, the costly guess. A
    timeout the server reported itself (HTTP 408) has a status and is retried normally.
    """
    if not isinstance(error, ProviderTimeoutError) or error.status_code is not None:
        return False
    return getattr(error, "phase", None) in (None, "read")


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

    A read timeout (the model may have generated, and billed, a whole answer nobody
    received) is retried at most ``max_read_timeout_retries`` times within
    ``max_retries``; connection failures, connect timeouts included, use the full budget.

    ``total_timeout`` (seconds, None for none) bounds a whole call: attempts, back-off and,
    for a stream, the stream itself. An attempt still running at the deadline is cancelled
    and a retry that could not start before it is not made; either way the call fails with
    a non-retryable :class:`~victor.errors.ProviderTimeoutError`, or with the error that
    would have been retried, so a fallback provider can take over in time.

    ``sleep`` and ``rng`` are injectable so tests run instantly and deterministically;
    ``on_retry`` lets an application count or trace retries.
    """

    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 60.0
    max_read_timeout_retries: int = 1
    total_timeout: float | None = None
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False)
    rng: Callable[[], float] = field(default=random.random, repr=False)
    on_retry: RetryHook | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.max_read_timeout_retries < 0:
            raise ValueError("max_retries and max_read_timeout_retries must be >= 0")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("retry delays must be >= 0")
        if self.total_timeout is not None and self.total_timeout <= 0:
            raise ValueError("total_timeout must be > 0 (or None for no deadline)")

    def backoff(self, retry_number: int) -> float:
        """The jittered delay before retry ``retry_number`` (1-based), ignoring server advice."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** max(0, retry_number - 1)))
        return self.rng() * ceiling

    def delay_for(
        self, error: ProviderError, retry_number: int, *, read_timeouts_retried: int = 0
    ) -> float | None:
        """Seconds to wait before retry ``retry_number``, or None when we must not retry.

        ``read_timeouts_retried`` is how many read timeouts this call has already retried.
        """
        if not error.retryable or retry_number > self.max_retries:
            return None
        if is_read_timeout(error) and read_timeouts_retried >= self.max_read_timeout_retries:
            return None
        # Rate limits carry the advice by contract; 503s get it set by the error mapping.
        advice = getattr(error, "retry_after", None)
        if advice is not None:
            if advice > self.max_retry_after:
                return None
            return float(advice)
        return self.backoff(retry_number)

    async def call(self, fn: Callable[[], Awaitable[T]], *, provider: str | None = None) -> T:
        """Await ``fn()`` and retry it on retryable :class:`ProviderError`\\ s.

        ``provider`` names the provider in the error raised when ``total_timeout`` passes.
        """
        attempts = _Attempts(self, provider)
        while True:
            try:
                return await attempts.run(fn())
            except ProviderError as error:
                await attempts.wait_or_raise(error)

    async def stream(
        self, factory: Callable[[], AsyncIterator[T]], *, provider: str | None = None
    ) -> AsyncIterator[T]:
        """Yield from ``factory()``, restarting it on a retryable error before the first item.

        Once an item has reached the caller, an error is raised as is: replaying the
        stream would show the caller the same text twice.
        """
        attempts = _Attempts(self, provider)
        while True:
            iterator = factory()
            yielded = False
            try:
                while True:
                    try:
                        item = await attempts.run(anext(iterator))
                    except StopAsyncIteration:
                        return
                    except ProviderError as error:
                        if yielded:
                            raise
                        await attempts.wait_or_raise(error)
                        break
                    yielded = True
                    yield item
            finally:
                aclose = getattr(iterator, "aclose", None)
                if aclose is not None:
                    await aclose()


class _Attempts:
    """The retry bookkeeping of one call: retries made, read timeouts retried, deadline."""

    def __init__(self, policy: RetryPolicy, provider: str | None) -> None:
        self.policy = policy
        self.provider = provider
        self.retries = 0
        self.read_timeouts = 0
        self.deadline: float | None = None
        if policy.total_timeout is not None:
            self.deadline = self._now() + policy.total_timeout

    @staticmethod
    def _now() -> float:
        # The event loop's clock, which asyncio.timeout_at measures deadlines against.
        return asyncio.get_running_loop().time()

    async def run(self, attempt: Awaitable[T]) -> T:
        """Await one attempt (or one stream item), cancelled when the deadline passes."""
        timeout = asyncio.timeout_at(self.deadline)
        try:
            async with timeout:
                return await attempt
        except TimeoutError:
            if not timeout.expired():
                raise
            seconds = self.policy.total_timeout
            raise ProviderTimeoutError(
                f"{self.provider or 'provider'}: no answer within total_timeout={seconds}s",
                provider=self.provider,
                retryable=False,
            ) from None

    async def wait_or_raise(self, error: ProviderError) -> None:
        """Sleep before the next attempt, or raise ``error`` when there must be none."""
        self.retries += 1
        policy = self.policy
        delay = policy.delay_for(error, self.retries, read_timeouts_retried=self.read_timeouts)
        if delay is None:
            raise error
        if self.deadline is not None and self._now() + delay >= self.deadline:
            error.add_note(f"not retried: total_timeout={policy.total_timeout}s would pass first")
            raise error
        if is_read_timeout(error):
            self.read_timeouts += 1
        logger.warning(
            "%s call failed (%s: %s); retry %d/%d in %.2fs",
            error.provider or "provider",
            type(error).__name__,
            error,
            self.retries,
            policy.max_retries,
            delay,
        )
        if policy.on_retry is not None:
            policy.on_retry(error, self.retries, delay)
        await policy.sleep(delay)
