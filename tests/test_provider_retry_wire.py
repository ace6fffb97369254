"""Retries, timeouts and deadlines of both providers over real HTTP (real SDKs, real sockets).

Unreachable servers are real too: a port bound but not listening refuses connections, and
a listening socket whose backlog is full leaves new connections hanging until the connect
timeout.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest

from provider_kit import HELLO, Sleeps
from victor.errors import (
    ProviderConnectionError,
    ProviderError,
    ProviderServerError,
    ProviderTimeoutError,
)
from victor.providers._retry import RetryPolicy
from victor.providers._sdk import SDKProvider
from victor.providers.anthropic import AnthropicProvider
from victor.providers.openai import OpenAIProvider
from wire_server import Reply, Status, WireServer, rate_limited, server_error, slow


def openai_at(root: str, **kwargs: Any) -> SDKProvider:
    return OpenAIProvider(api_key="k", base_url=f"{root}/v1", **kwargs)


def anthropic_at(root: str, **kwargs: Any) -> SDKProvider:
    return AnthropicProvider(api_key="k", base_url=root, **kwargs)


PROVIDERS = [pytest.param(openai_at, id="openai"), pytest.param(anthropic_at, id="anthropic")]
Factory = Callable[..., SDKProvider]


@pytest.fixture
def refusing_root() -> Iterator[str]:
    """A URL whose port is bound (so no one else takes it) but refuses connections."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def hanging_root() -> Iterator[str]:
    """A URL where connecting hangs: the listening socket's backlog is full."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = listener.getsockname()
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(address)
        fillers.append(filler)
    time.sleep(0.02)
    probe = socket.socket()
    probe.settimeout(0.05)
    try:
        probe.connect(address)
    except TimeoutError:
        pass  # as wanted
    except OSError as exc:
        pytest.skip(f"connections to a full backlog do not hang here ({exc})")
    else:
        pytest.skip("connections to a full backlog do not hang here")
    finally:
        probe.close()
    try:
        yield f"http://{address[0]}:{address[1]}"
    finally:
        for sock in (*fillers, listener):
            sock.close()


def counting(sleeps: Sleeps, **kwargs: Any) -> tuple[RetryPolicy, list[ProviderError]]:
    """A policy with instant sleeps that records the errors it retried."""
    retried: list[ProviderError] = []
    policy = RetryPolicy(sleep=sleeps, on_retry=lambda e, n, d: retried.append(e), **kwargs)
    return policy, retried


# -- unreachable servers ------------------------------------------------------------------


@pytest.mark.parametrize("make", PROVIDERS)
async def test_connection_refused_is_retried_then_raised(make: Factory, refusing_root: str) -> None:
    sleeps = Sleeps()
    policy, retried = counting(sleeps, max_retries=2)

    async with make(refusing_root, retry_policy=policy) as provider:
        with pytest.raises(ProviderConnectionError) as caught:
            await provider.chat(HELLO, model="m")

    assert type(caught.value) is ProviderConnectionError and caught.value.retryable
    assert len(retried) == 2 and len(sleeps) == 2


@pytest.mark.parametrize("make", PROVIDERS)
async def test_a_connect_timeout_is_retried_like_a_connection_failure(
    make: Factory, hanging_root: str
) -> None:
    sleeps = Sleeps()
    policy, retried = counting(sleeps, max_retries=2)

    async with make(hanging_root, connect_timeout=0.05, retry_policy=policy) as provider:
        with pytest.raises(ProviderTimeoutError, match="connecting") as caught:
            await provider.chat(HELLO, model="m")

    assert caught.value.phase == "connect"  # type: ignore[attr-defined]
    assert len(retried) == 2  # the whole budget: the request was never sent


# -- timeouts and deadlines ---------------------------------------------------------------


@pytest.mark.parametrize("make", PROVIDERS)
async def test_a_read_timeout_is_retried_only_once(make: Factory, server: WireServer) -> None:
    sleeps = Sleeps()
    policy, retried = counting(sleeps, max_retries=3)
    server.enqueue(slow(2.0), slow(2.0), Reply(text="never asked for"))

    async with make(server.url, timeout=0.1, retry_policy=policy) as provider:
        with pytest.raises(ProviderTimeoutError, match="waiting for the answer") as caught:
            await provider.chat(HELLO, model="m")

    assert caught.value.phase == "read"  # type: ignore[attr-defined]
    assert len(server.requests) == 2 and len(retried) == 1


async def test_total_timeout_ends_a_call_across_retries(server: WireServer) -> None:
    sleeps = Sleeps()
    policy = RetryPolicy(total_timeout=0.3, sleep=sleeps, rng=lambda: 0.0)
    server.enqueue(server_error(), slow(5.0), Reply(text="never asked for"))

    started = time.monotonic()
    async with openai_at(server.url, retry_policy=policy) as provider:
        with pytest.raises(ProviderTimeoutError, match="total_timeout") as caught:
            await provider.chat(HELLO, model="m")

    assert time.monotonic() - started < 2.0
    assert caught.value.provider == "openai" and not caught.value.retryable
    assert len(server.requests) == 2 and len(sleeps) == 1


async def test_total_timeout_bounds_a_stream(server: WireServer) -> None:
    server.enqueue(slow(5.0), protocol="anthropic")

    async with anthropic_at(server.url, retry_policy=RetryPolicy(total_timeout=0.2)) as provider:
        with pytest.raises(ProviderTimeoutError, match="total_timeout"):
            _ = [chunk async for chunk in provider.stream(HELLO, model="m")]

    assert len(server.requests) == 1


async def test_a_retry_that_would_pass_the_deadline_is_not_made(server: WireServer) -> None:
    sleeps = Sleeps()
    server.enqueue(rate_limited(retry_after="20"), Reply(text="never asked for"))

    policy = RetryPolicy(total_timeout=10.0, sleep=sleeps)
    async with openai_at(server.url, retry_policy=policy) as provider:
        with pytest.raises(ProviderError) as caught:
            await provider.chat(HELLO, model="m")

    assert caught.value.status_code == 429 and sleeps == []
    assert len(server.requests) == 1


# -- server advice ------------------------------------------------------------------------


@pytest.mark.parametrize("make", PROVIDERS)
async def test_retry_after_as_an_http_date(make: Factory, server: WireServer) -> None:
    sleeps = Sleeps()
    when = format_datetime(datetime.fromtimestamp(time.time() + 30, tz=UTC), usegmt=True)
    server.enqueue(rate_limited(retry_after=when), Reply(text="ok"))

    async with make(server.url, retry_policy=RetryPolicy(sleep=sleeps)) as provider:
        response = await provider.chat(HELLO, model="m")

    assert response.content == "ok"
    [delay] = sleeps
    assert 28.0 < delay <= 30.0  # the date has a one-second resolution


@pytest.mark.parametrize("make", PROVIDERS)
async def test_a_503_with_retry_after_waits_as_told(make: Factory, server: WireServer) -> None:
    sleeps = Sleeps()
    unavailable = Status(503, "maintenance", headers={"retry-after": "4"})
    server.enqueue(unavailable, Reply(text="back"))

    async with make(server.url, retry_policy=RetryPolicy(sleep=sleeps)) as provider:
        response = await provider.chat(HELLO, model="m")

    assert response.content == "back" and sleeps == [4.0]


async def test_a_503_asking_for_too_long_a_wait_is_raised_at_once(server: WireServer) -> None:
    sleeps = Sleeps()
    server.enqueue(Status(503, "down", headers={"retry-after": "600"}), Reply(text="never"))

    async with openai_at(server.url, retry_policy=RetryPolicy(sleep=sleeps)) as provider:
        with pytest.raises(ProviderServerError) as caught:
            await provider.chat(HELLO, model="m")

    assert caught.value.status_code == 503 and sleeps == []
