"""The retry policy and the error mapping shared by the real providers (no network)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from provider_kit import Sleeps
from victor.errors import (
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderConnectionError,
    ProviderContextLengthError,
    ProviderError,
    ProviderModelNotFoundError,
    ProviderRateLimitError,
    ProviderResponseError,
    ProviderServerError,
    ProviderTimeoutError,
)
from victor.providers._retry import (
    RetryPolicy,
    error_for_status,
    error_for_type,
    parse_retry_after,
)
from victor.providers._sdk import parse_tool_arguments, split_options


def policy(sleeps: Sleeps, **kwargs: object) -> RetryPolicy:
    return RetryPolicy(sleep=sleeps, rng=lambda: 1.0, **kwargs)  # type: ignore[arg-type]


# -- Retry-After --------------------------------------------------------------------------


NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"Retry-After": "0.25"}, 0.25),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "200", "retry-after": "9"}, 0.2),  # the precise one wins
        ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),
        ({"retry-after": format_datetime(datetime(2030, 1, 1, 12, 0, 30, tzinfo=UTC))}, 30.0),
        ({"retry-after": format_datetime(datetime(2029, 1, 1, tzinfo=UTC))}, 0.0),  # past
        ({"retry-after": "tomorrow-ish"}, None),
        ({"retry-after": "-3"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str] | None, expected: float | None) -> None:
    assert parse_retry_after(headers, now=NOW) == expected


# -- delays -------------------------------------------------------------------------------


def test_backoff_is_exponential_capped_and_fully_jittered() -> None:
    top = RetryPolicy(base_delay=0.5, max_delay=3.0, rng=lambda: 1.0)
    assert [top.backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    half = RetryPolicy(base_delay=0.5, max_delay=3.0, rng=lambda: 0.5)
    assert half.backoff(3) == 1.0
    assert RetryPolicy(rng=lambda: 0.0).backoff(4) == 0.0


def test_delay_for_honours_server_advice_within_limits() -> None:
    p = RetryPolicy(max_retries=2, max_retry_after=10.0, rng=lambda: 1.0)
    limited = ProviderRateLimitError("429", retry_after=4.0)
    assert p.delay_for(limited, 1) == 4.0
    assert p.delay_for(limited, 3) is None  # out of retries
    assert p.delay_for(ProviderRateLimitError("429", retry_after=11.0), 1) is None
    assert p.delay_for(ProviderRateLimitError("429"), 2) == 1.0  # no advice: backoff
    assert p.delay_for(ProviderAuthError("401"), 1) is None
    assert p.delay_for(ProviderServerError("500"), 1) == 0.5
    unavailable = error_for_status(503, "busy", provider="p", headers={"retry-after": "2"})
    assert p.delay_for(unavailable, 1) == 2.0


def test_policy_rejects_negative_settings() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_retries=-1)
    with pytest.raises(ValueError):
        RetryPolicy(base_delay=-0.1)


# -- call ---------------------------------------------------------------------------------


async def test_call_retries_retryable_errors_then_returns() -> None:
    sleeps = Sleeps()
    seen: list[tuple[str, int, float]] = []
    errors = [ProviderServerError("boom"), ProviderConnectionError("reset")]

    async def flaky() -> str:
        if errors:
            raise errors.pop(0)
        return "ok"

    p = policy(sleeps, on_retry=lambda e, n, d: seen.append((type(e).__name__, n, d)))
    assert await p.call(flaky) == "ok"
    assert sleeps == [0.5, 1.0]
    assert seen == [("ProviderServerError", 1, 0.5), ("ProviderConnectionError", 2, 1.0)]


async def test_call_raises_non_retryable_errors_at_once() -> None:
    sleeps = Sleeps()
    attempts = 0

    async def refused() -> str:
        nonlocal attempts
        attempts += 1
        raise ProviderBadRequestError("bad")

    with pytest.raises(ProviderBadRequestError):
        await policy(sleeps).call(refused)
    assert attempts == 1 and sleeps == []


async def test_call_gives_up_after_max_retries_with_the_last_error() -> None:
    sleeps = Sleeps()
    attempts = 0

    async def down() -> str:
        nonlocal attempts
        attempts += 1
        raise ProviderConnectionError(f"reset {attempts}")

    with pytest.raises(ProviderConnectionError, match="reset 3"):
        await policy(sleeps, max_retries=2).call(down)
    assert attempts == 3 and len(sleeps) == 2


async def test_a_read_timeout_is_retried_once_a_connect_timeout_fully() -> None:
    sleeps = Sleeps()

    def timeout(phase: str | None) -> ProviderTimeoutError:
        error = ProviderTimeoutError(f"{phase} timeout")
        error.phase = phase  # type: ignore[attr-defined]  # as the SDK error mapping sets it
        return error

    async def failing(phase: str | None) -> int:
        attempts = 0

        async def attempt() -> str:
            nonlocal attempts
            attempts += 1
            raise timeout(phase)

        with pytest.raises(ProviderTimeoutError):
            await policy(sleeps, max_retries=3).call(attempt)
        return attempts

    assert await failing("read") == 2  # the model may have billed a whole answer
    assert await failing(None) == 2  # unknown phase: the costly guess
    assert await failing("connect") == 4  # nothing was sent
    assert await failing("write") == 4
    unlimited = RetryPolicy(max_read_timeout_retries=5)
    assert unlimited.delay_for(timeout("read"), 2, read_timeouts_retried=1) is not None
    server_timeout = error_for_status(408, "timeout", provider="p")
    assert policy(sleeps).delay_for(server_timeout, 1, read_timeouts_retried=9) == 0.5


async def test_total_timeout_cancels_an_attempt_that_runs_past_it() -> None:
    sleeps = Sleeps()

    async def hangs() -> str:
        await asyncio.sleep(10)
        return "never"

    p = policy(sleeps, total_timeout=0.05)
    with pytest.raises(ProviderTimeoutError, match=r"total_timeout=0\.05s") as caught:
        await p.call(hangs, provider="prov")
    assert not caught.value.retryable and caught.value.provider == "prov"
    assert sleeps == []


async def test_total_timeout_skips_a_retry_that_could_not_start_in_time() -> None:
    sleeps = Sleeps()

    async def limited() -> str:
        raise ProviderRateLimitError("429", retry_after=5.0)

    with pytest.raises(ProviderRateLimitError) as caught:
        await policy(sleeps, total_timeout=2.0).call(limited)
    assert sleeps == []
    assert any("total_timeout" in note for note in caught.value.__notes__)


async def test_total_timeout_bounds_a_stream() -> None:
    async def slow_source() -> AsyncIterator[int]:
        yield 1
        await asyncio.sleep(10)
        yield 2

    got: list[int] = []
    with pytest.raises(ProviderTimeoutError, match="total_timeout"):
        async for item in RetryPolicy(total_timeout=0.05).stream(slow_source):
            got.append(item)
    assert got == [1]


def test_total_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(total_timeout=0)


# -- stream -------------------------------------------------------------------------------


async def test_stream_restarts_only_before_the_first_item() -> None:
    sleeps = Sleeps()
    starts = 0
    closed = 0

    async def source() -> AsyncIterator[str]:
        nonlocal starts, closed
        starts += 1
        try:
            if starts == 1:
                raise ProviderServerError("before anything")
            yield "a"
            if starts == 2:
                raise ProviderServerError("after a")
        finally:
            closed += 1

    got: list[str] = []
    with pytest.raises(ProviderServerError, match="after a"):
        async for item in policy(sleeps).stream(source):
            got.append(item)
    assert got == ["a"] and starts == 2 and closed == 2 and len(sleeps) == 1


async def test_stream_closes_the_source_when_the_caller_stops_early() -> None:
    closed = False

    async def source() -> AsyncIterator[int]:
        nonlocal closed
        try:
            for i in range(10):
                yield i
        finally:
            closed = True

    stream = RetryPolicy().stream(source)
    assert await anext(stream) == 0
    await stream.aclose()
    assert closed


# -- error mapping ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (400, ProviderBadRequestError, False),
        (401, ProviderAuthError, False),
        (402, ProviderAuthError, False),
        (403, ProviderAuthError, False),
        (404, ProviderBadRequestError, False),
        (408, ProviderTimeoutError, True),
        (409, ProviderError, True),
        (422, ProviderBadRequestError, False),
        (429, ProviderRateLimitError, True),
        (500, ProviderServerError, True),
        (503, ProviderServerError, True),
        (529, ProviderServerError, True),
    ],
)
def test_error_for_status(status: int, cls: type[ProviderError], retryable: bool) -> None:
    error = error_for_status(status, "msg", provider="p", auth_hint=" (set KEY)")
    assert type(error) is cls
    assert error.retryable is retryable
    assert error.status_code == status and error.provider == "p"
    assert str(error).startswith(f"p: HTTP {status}: msg")
    assert ("(set KEY)" in str(error)) is (cls is ProviderAuthError)


UNKNOWN_MODEL, TOO_LONG, REFUSED = (
    ProviderModelNotFoundError,
    ProviderContextLengthError,
    ProviderBadRequestError,
)


@pytest.mark.parametrize(
    ("status", "message", "error_type", "cls"),
    [
        (404, "The model `gpt-9` does not exist", "model_not_found", UNKNOWN_MODEL),
        (404, "model: claude-nope", "not_found_error", UNKNOWN_MODEL),
        (400, "Invalid model: mistral-huge", None, UNKNOWN_MODEL),
        (400, "foo is not a valid model ID", None, UNKNOWN_MODEL),
        (400, "anything", "context_length_exceeded", TOO_LONG),
        (400, "This model's maximum context length is 8192 tokens", None, TOO_LONG),
        (400, "prompt is too long: 208310 tokens > 200000 maximum", None, TOO_LONG),
        (400, "input length and `max_tokens` exceed context limit", None, TOO_LONG),
        (400, "too large for model with 32768 maximum context length", None, TOO_LONG),
        (400, "exceeds the available context size", "exceed_context_size_error", TOO_LONG),
        (400, "max_tokens is too large: 100000", None, REFUSED),
        (400, "'max_tokens' is not supported with this model.", None, REFUSED),
        (404, "Not Found", None, REFUSED),
        (422, "tools.0.name: string does not match pattern", None, REFUSED),
    ],
)
def test_refusals_about_the_model_are_told_apart(
    status: int, message: str, error_type: str | None, cls: type[ProviderError]
) -> None:
    error = error_for_status(status, message, provider="p", error_type=error_type)
    assert type(error) is cls and not error.retryable
    assert isinstance(error, ProviderBadRequestError)


def test_refusals_in_a_stream_are_told_apart_too() -> None:
    error = error_for_type("context_length_exceeded", "too long", provider="p")
    assert type(error) is ProviderContextLengthError
    error = error_for_type("invalid_request_error", "prompt is too long: 9 > 8", provider="p")
    assert type(error) is ProviderContextLengthError


def test_rate_limit_errors_carry_retry_after() -> None:
    error = error_for_status(429, "slow down", provider="p", headers={"retry-after": "12"})
    assert isinstance(error, ProviderRateLimitError) and error.retry_after == 12.0
    assert error.retryable


def test_an_exhausted_quota_is_not_retried() -> None:
    error = error_for_status(429, "quota", provider="p", error_type="insufficient_quota")
    assert isinstance(error, ProviderRateLimitError) and not error.retryable


@pytest.mark.parametrize(
    ("error_type", "cls"),
    [
        ("overloaded_error", ProviderServerError),
        ("rate_limit_error", ProviderRateLimitError),
        ("authentication_error", ProviderAuthError),
        ("invalid_request_error", ProviderBadRequestError),
        ("something_new", ProviderServerError),
        (None, ProviderServerError),
    ],
)
def test_error_for_type(error_type: str | None, cls: type[ProviderError]) -> None:
    assert type(error_for_type(error_type, "m", provider="p")) is cls


# -- arguments and options ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "arguments", "raw"),
    [
        ('{"a": 1}', {"a": 1}, None),
        ("", {}, None),
        (None, {}, None),
        ("  ", {}, None),
        ('{"a": ', {}, '{"a": '),
        ("[1]", {}, "[1]"),
        ('"text"', {}, '"text"'),
    ],
)
def test_parse_tool_arguments(
    text: str | None, arguments: dict[str, object], raw: str | None
) -> None:
    assert parse_tool_arguments(text) == (arguments, raw)


def test_split_options_sends_unknown_options_in_the_body() -> None:
    def create(*, messages: object, model: str, stop: object = None, timeout: float = 1) -> None:
        """A stand-in SDK method."""

    kwargs, extra = split_options(
        create, {"stop": ["x"], "timeout": 2, "top_k": 5, "extra_body": {"min_p": 0.1}}
    )
    assert kwargs == {"stop": ["x"], "timeout": 2}
    assert extra == {"top_k": 5, "min_p": 0.1}


def test_response_error_is_not_retryable() -> None:
    assert not ProviderResponseError("x").retryable
