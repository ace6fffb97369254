"""FallbackProvider: over the real SDKs and HTTP, and with in-memory providers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from provider_kit import HELLO
from victor.errors import (
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderContextLengthError,
    ProviderError,
    ProviderModelNotFoundError,
    ProviderServerError,
)
from victor.protocols.interfaces import IProvider
from victor.protocols.messages import ChatResponse, Message, StreamChunk
from victor.protocols.tools import Tool
from victor.providers._retry import RetryPolicy
from victor.providers.anthropic import AnthropicProvider
from victor.providers.fallback import FallbackProvider, FallbackRaw, default_should_fallback
from victor.providers.openai import OpenAIProvider
from wire_server import Reply, Status, WireServer, rate_limited, server_error, unauthorized


async def no_sleep(seconds: float) -> None:
    return None


class Stub(IProvider):
    """Plays ``outcomes`` in order: a text answers, an exception is raised, and a
    ``(text, exception)`` pair streams the text and then fails."""

    def __init__(self, name: str, *outcomes: Any) -> None:
        self.name = name
        self.outcomes = list(outcomes)
        self.models: list[str] = []
        self.closed = 0

    def _next(self, model: str) -> Any:
        self.models.append(model)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def chat(
        self, messages: Sequence[Message], *, model: str, tools: Sequence[Tool] = (), **kw: Any
    ) -> ChatResponse:
        return ChatResponse(content=self._next(model), model=model, raw={"from": self.name})

    async def stream(
        self, messages: Sequence[Message], *, model: str, tools: Sequence[Tool] = (), **kw: Any
    ) -> AsyncIterator[StreamChunk]:
        outcome = self._next(model)
        if isinstance(outcome, tuple):
            text, error = outcome
            yield StreamChunk(type="text", text=text)
            raise error
        yield StreamChunk(type="text", text=outcome)
        response = ChatResponse(content=outcome, model=model, raw={"from": self.name})
        yield StreamChunk(type="done", response=response)

    async def aclose(self) -> None:
        self.closed += 1


# -- over the real SDKs -------------------------------------------------------------------


async def test_switches_provider_and_model_when_the_primary_fails(server: WireServer) -> None:
    fast = RetryPolicy(max_retries=1, sleep=no_sleep)
    primary = OpenAIProvider(api_key="k", base_url=server.openai_base_url, retry_policy=fast)
    backup = AnthropicProvider(api_key="k", base_url=server.anthropic_base_url, retry_policy=fast)
    server.enqueue(rate_limited(), rate_limited(), protocol="openai")  # retries run out
    server.enqueue(Reply(text="from claude"), protocol="anthropic")

    async with FallbackProvider(primary, (backup, "claude-backup")) as fallback:
        response = await fallback.chat(HELLO, model="gpt-main")

    assert response.content == "from claude"
    assert response.model == "claude-backup"
    assert isinstance(response.raw, FallbackRaw)
    assert (response.raw.provider, response.raw.index) == ("anthropic", 1)
    assert [type(e).__name__ for e in response.raw.failures] == ["ProviderRateLimitError"]
    assert fallback.last_provider == "anthropic"
    assert [r.body["model"] for r in server.requests] == ["gpt-main", "gpt-main", "claude-backup"]


async def test_streams_from_the_fallback_when_the_primary_fails_first(server: WireServer) -> None:
    primary = OpenAIProvider(api_key="bad", base_url=server.openai_base_url)
    backup = AnthropicProvider(api_key="k", base_url=server.anthropic_base_url)
    server.enqueue(unauthorized(), protocol="openai")
    server.enqueue(Reply(text="streamed by claude"), protocol="anthropic")

    async with FallbackProvider(primary, (backup, "claude-backup")) as fallback:
        chunks = [c async for c in fallback.stream(HELLO, model="gpt-main")]

    done = chunks[-1].response
    assert done is not None and done.content == "streamed by claude"
    assert isinstance(done.raw, FallbackRaw) and done.raw.provider == "anthropic"
    assert isinstance(done.raw.failures[0], ProviderAuthError)


async def test_when_every_provider_fails_the_last_error_is_raised(server: WireServer) -> None:
    primary = OpenAIProvider(api_key="k", base_url=server.openai_base_url, max_retries=0)
    backup = AnthropicProvider(api_key="k", base_url=server.anthropic_base_url, max_retries=0)
    server.enqueue(unauthorized(), protocol="openai")
    server.enqueue(server_error(), protocol="anthropic")

    async with FallbackProvider(primary, backup) as fallback:
        with pytest.raises(ProviderServerError) as caught:
            await fallback.chat(HELLO, model="any")

    assert caught.value.provider == "anthropic"
    assert any("openai" in note and "401" in note for note in caught.value.__notes__)


async def test_an_unknown_model_falls_back(server: WireServer) -> None:
    primary = OpenAIProvider(api_key="k", base_url=server.openai_base_url)
    backup = AnthropicProvider(api_key="k", base_url=server.anthropic_base_url)
    server.enqueue(
        Status(404, "The model `gpt-gone` does not exist", code="model_not_found"),
        protocol="openai",
    )
    server.enqueue(Reply(text="from claude"), protocol="anthropic")

    async with FallbackProvider(primary, (backup, "claude-backup")) as fallback:
        response = await fallback.chat(HELLO, model="gpt-gone")

    assert response.content == "from claude"
    assert isinstance(response.raw, FallbackRaw)
    assert [type(e) for e in response.raw.failures] == [ProviderModelNotFoundError]


async def test_a_prompt_too_long_falls_back_to_a_larger_model(server: WireServer) -> None:
    small = AnthropicProvider(api_key="k", base_url=server.anthropic_base_url)
    large = OpenAIProvider(api_key="k", base_url=server.openai_base_url)
    server.enqueue(
        Status(400, "prompt is too long: 208310 tokens > 200000 maximum"), protocol="anthropic"
    )
    server.enqueue(Reply(text="fits"), protocol="openai")

    async with FallbackProvider(small, (large, "gpt-long-context")) as fallback:
        chunks = [c async for c in fallback.stream(HELLO, model="claude-small")]

    done = chunks[-1].response
    assert done is not None and done.content == "fits"
    assert isinstance(done.raw, FallbackRaw)
    assert [type(e) for e in done.raw.failures] == [ProviderContextLengthError]


async def test_a_refused_request_stops_the_chain_over_http(server: WireServer) -> None:
    primary = OpenAIProvider(api_key="k", base_url=server.openai_base_url)
    backup = AnthropicProvider(api_key="k", base_url=server.anthropic_base_url)
    server.enqueue(Status(400, "Invalid schema for function 'get_weather'"), protocol="openai")

    async with FallbackProvider(primary, backup) as fallback:
        with pytest.raises(ProviderBadRequestError, match="Invalid schema"):
            await fallback.chat(HELLO, model="gpt-main")

    assert [r.protocol for r in server.requests] == ["openai"]


# -- chain rules --------------------------------------------------------------------------


async def test_primary_answer_is_marked_too() -> None:
    fallback = FallbackProvider(Stub("a", "hi"), Stub("b"))
    response = await fallback.chat(HELLO, model="m")
    assert response.content == "hi"
    assert response.raw == FallbackRaw(provider="a", index=0, model="m", raw={"from": "a"})


async def test_a_bad_request_is_not_passed_on_by_default() -> None:
    backup = Stub("b", "never")
    fallback = FallbackProvider(Stub("a", ProviderBadRequestError("bad schema")), backup)

    with pytest.raises(ProviderBadRequestError):
        await fallback.chat(HELLO, model="m")
    assert backup.models == []


def test_the_default_rule() -> None:
    assert default_should_fallback(ProviderServerError("busy"))
    assert default_should_fallback(ProviderModelNotFoundError("no such model"))
    assert default_should_fallback(ProviderContextLengthError("too long"))
    assert not default_should_fallback(ProviderBadRequestError("bad schema"))


async def test_should_fallback_decides() -> None:
    fallback = FallbackProvider(
        Stub("a", ProviderBadRequestError("prompt too long")),
        Stub("b", "fits"),
        should_fallback=lambda error: True,
    )
    assert (await fallback.chat(HELLO, model="m")).content == "fits"


async def test_same_provider_with_a_cheaper_model() -> None:
    stub = Stub("one", ProviderServerError("busy"), "small answer")
    fallback = FallbackProvider(stub, (stub, "small-model"))

    response = await fallback.chat(HELLO, model="big-model")

    assert stub.models == ["big-model", "small-model"]
    assert response.model == "small-model" and isinstance(response.raw, FallbackRaw)
    await fallback.aclose()
    assert stub.closed == 1  # closed once although it appears twice


async def test_a_stream_that_already_yielded_is_not_passed_on() -> None:
    backup = Stub("b", "never")
    fallback = FallbackProvider(Stub("a", ("partial", ProviderServerError("cut"))), backup)

    seen: list[StreamChunk] = []
    with pytest.raises(ProviderServerError):
        async for chunk in fallback.stream(HELLO, model="m"):
            seen.append(chunk)
    assert [c.text for c in seen] == ["partial"] and backup.models == []


async def test_non_provider_errors_are_not_swallowed() -> None:
    fallback = FallbackProvider(Stub("a", RuntimeError("bug")), Stub("b", "never"))
    with pytest.raises(RuntimeError):
        await fallback.chat(HELLO, model="m")


async def test_aclose_closes_every_provider_even_if_one_fails() -> None:
    class Broken(Stub):
        async def aclose(self) -> None:
            raise ProviderError("cannot close")

    last = Stub("c")
    fallback = FallbackProvider(Broken("a"), last)
    with pytest.raises(ProviderError, match="cannot close"):
        await fallback.aclose()
    assert last.closed == 1


def test_only_providers_are_accepted() -> None:
    with pytest.raises(TypeError):
        FallbackProvider("openai")  # type: ignore[arg-type]
