"""AnthropicProvider through the real ``anthropic`` SDK over real HTTP to the wire server."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator

import httpx2
import pytest

from provider_kit import HELLO, WEATHER, Sleeps, collect, sent_key
from victor.errors import (
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderConnectionError,
    ProviderContextLengthError,
    ProviderModelNotFoundError,
    ProviderRateLimitError,
    ProviderResponseError,
    ProviderServerError,
    ProviderTimeoutError,
)
from victor.protocols.messages import Message, StreamChunk, ToolCall
from victor.providers._retry import RetryPolicy
from victor.providers.anthropic import AnthropicProvider
from wire_server import (
    Raw,
    Reply,
    Status,
    WireServer,
    WireToolCall,
    malformed,
    rate_limited,
    server_error,
    slow,
    unauthorized,
)


@pytest.fixture
async def provider(server: WireServer, sleeps: Sleeps) -> AsyncIterator[AnthropicProvider]:
    async with AnthropicProvider(
        api_key="test-key",
        base_url=server.anthropic_base_url,
        retry_policy=RetryPolicy(max_retries=3, sleep=sleeps),
    ) as p:
        yield p


# -- plain calls and conversion -----------------------------------------------------------


async def test_plain_chat(provider: AnthropicProvider, server: WireServer) -> None:
    server.enqueue(Reply(text="Hi there!", input_tokens=10, output_tokens=3, cached_tokens=30))

    response = await provider.chat(
        [Message(role="system", content="Be brief."), *HELLO], model="claude-test", temperature=0.3
    )

    assert response.content == "Hi there!"
    assert response.model == "claude-test"
    assert response.finish_reason == "stop"  # end_turn, in the shared vocabulary
    # Cached tokens are counted in the input, as OpenAI counts them.
    assert (response.usage.input_tokens, response.usage.cached_input_tokens) == (40, 30)
    assert response.usage.output_tokens == 3 and response.usage.requests == 1
    [request] = server.requests
    assert request.path == "/v1/messages"
    assert sent_key(request.headers) == "test-key"
    assert "anthropic-version" in request.headers
    assert request.body == {
        "model": "claude-test",
        "max_tokens": 4096,  # default_max_tokens: the API requires the field
        "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello!"}]}],
        "temperature": 0.3,
    }


async def test_conversation_with_tool_calls_and_results_is_converted(
    provider: AnthropicProvider, server: WireServer
) -> None:
    server.enqueue(Reply(text="Sunny in Paris."))
    conversation = [
        Message(role="system", content="Be brief."),
        Message(role="user", content="Weather in Paris and Rome?"),
        Message(
            role="assistant",
            content="Checking.",
            tool_calls=[
                ToolCall(id="toolu_a", name="get_weather", arguments={"city": "Paris"}),
                ToolCall(id="toolu_b", name="get_weather", arguments={}, raw_arguments="{bad"),
            ],
        ),
        Message(role="tool", tool_call_id="toolu_a", name="get_weather", content="sunny"),
        Message(
            role="tool", tool_call_id="toolu_b", name="get_weather", content="bad", is_error=True
        ),
        Message(role="user", content="Thanks, go on."),
        Message(role="system", content="Answer in English."),
    ]

    await provider.chat(conversation, model="claude-test", tools=[WEATHER], max_tokens=100)

    body = server.requests[0].body
    assert body["system"] == "Be brief.\n\nAnswer in English."
    assert body["max_tokens"] == 100
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Rome?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_a",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {"type": "tool_use", "id": "toolu_b", "name": "get_weather", "input": {}},
            ],
        },
        {
            "role": "user",  # both results and the next user text in one user turn
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_a", "content": "sunny"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_b",
                    "content": "bad",
                    "is_error": True,
                },
                {"type": "text", "text": "Thanks, go on."},
            ],
        },
    ]
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather of a city.",
            "input_schema": WEATHER.parameters,
        }
    ]


async def test_tool_calls_in_the_answer_are_parsed(
    provider: AnthropicProvider, server: WireServer
) -> None:
    server.enqueue(
        Reply(
            text="Let me look.",
            tool_calls=[
                WireToolCall("get_weather", {"city": "Paris"}, id="toolu_1"),
                WireToolCall("get_weather", "{not json", id="toolu_2"),
            ],
        )
    )

    response = await provider.chat(HELLO, model="claude-test", tools=[WEATHER])

    assert response.content == "Let me look."
    assert response.finish_reason == "tool_calls"  # tool_use, in the shared vocabulary
    good, bad = response.tool_calls
    assert good == ToolCall(id="toolu_1", name="get_weather", arguments={"city": "Paris"})
    assert bad.arguments == {} and bad.raw_arguments == "{not json"


async def test_max_tokens_stop_reason_reads_as_length(
    provider: AnthropicProvider, server: WireServer
) -> None:
    server.enqueue(Reply(text="cut", finish_reason="max_tokens"))
    response = await provider.chat(HELLO, model="claude-test", max_tokens=1)
    assert response.finish_reason == "length"


# -- streaming ----------------------------------------------------------------------------


async def test_stream_text_tool_calls_and_usage(
    provider: AnthropicProvider, server: WireServer
) -> None:
    server.enqueue(
        Reply(
            text="Let me check the weather.",
            tool_calls=[
                WireToolCall("get_weather", {"city": "Paris"}, id="toolu_p"),
                WireToolCall("get_weather", {"city": "Rome"}, id="toolu_r"),
            ],
            chunk_size=4,
            input_tokens=20,
            cached_tokens=5,
            output_tokens=9,
        )
    )

    chunks = await collect(provider.stream(HELLO, model="claude-test", tools=[WEATHER]))

    texts = [c.text for c in chunks if c.type == "text"]
    assert len(texts) > 1 and "".join(texts) == "Let me check the weather."
    calls = [c.tool_call for c in chunks if c.type == "tool_call"]
    assert calls == [
        ToolCall(id="toolu_p", name="get_weather", arguments={"city": "Paris"}),
        ToolCall(id="toolu_r", name="get_weather", arguments={"city": "Rome"}),
    ]
    assert [c.type for c in chunks[-2:]] == ["usage", "done"]
    done = chunks[-1].response
    assert done is not None
    assert done.content == "Let me check the weather." and done.tool_calls == calls
    assert done.usage.input_tokens == 25 and done.usage.cached_input_tokens == 5
    assert done.usage.output_tokens == 9  # from message_delta, not message_start
    assert done.finish_reason == "tool_calls"
    assert server.requests[0].body["stream"] is True


async def test_stream_invalid_tool_arguments_keep_the_raw_text(
    provider: AnthropicProvider, server: WireServer
) -> None:
    server.enqueue(Reply(tool_calls=[WireToolCall("get_weather", '{"city": "Par', id="t1")]))

    chunks = await collect(provider.stream(HELLO, model="claude-test", tools=[WEATHER]))

    [call] = [c.tool_call for c in chunks if c.type == "tool_call"]
    assert call is not None
    assert call.arguments == {} and call.raw_arguments == '{"city": "Par'


async def test_stream_error_event_before_any_text_is_retried(
    provider: AnthropicProvider, server: WireServer, sleeps: Sleeps
) -> None:
    # Event 2 is the ping after message_start: nothing has reached the caller yet.
    server.enqueue(Reply(text="never shown", error_after=2), Reply(text="recovered"))

    chunks = await collect(provider.stream(HELLO, model="claude-test"))

    assert chunks[-1].response is not None and chunks[-1].response.content == "recovered"
    assert len(server.requests) == 2 and len(sleeps) == 1


async def test_stream_error_event_after_text_is_raised(
    provider: AnthropicProvider, server: WireServer
) -> None:
    server.enqueue(Reply(text="Hello there", chunk_size=2, error_after=5), Reply(text="x"))

    seen: list[StreamChunk] = []
    with pytest.raises(ProviderServerError, match="overloaded_error"):
        async for chunk in provider.stream(HELLO, model="claude-test"):
            seen.append(chunk)

    assert seen and all(c.type == "text" for c in seen)
    assert len(server.requests) == 1


async def test_stream_cut_short_raises(provider: AnthropicProvider, server: WireServer) -> None:
    server.enqueue(Reply(text="Hello there", chunk_size=2, cut_after=5))

    with pytest.raises(ProviderConnectionError):
        await collect(provider.stream(HELLO, model="claude-test"))


async def test_stream_closed_before_message_stop_is_retried(
    provider: AnthropicProvider, server: WireServer, sleeps: Sleeps
) -> None:
    # Event 2 is the ping after message_start: the stream ends cleanly there.
    server.enqueue(Reply(text="never shown", end_after=2), Reply(text="recovered"))

    chunks = await collect(provider.stream(HELLO, model="claude-test"))

    assert chunks[-1].response is not None and chunks[-1].response.content == "recovered"
    assert len(server.requests) == 2 and len(sleeps) == 1


async def test_stream_closed_before_message_stop_after_text_raises(
    provider: AnthropicProvider, server: WireServer
) -> None:
    server.enqueue(Reply(text="Hello there", chunk_size=2, end_after=6), Reply(text="x"))

    seen: list[StreamChunk] = []
    with pytest.raises(ProviderConnectionError, match="ended before the model finished"):
        async for chunk in provider.stream(HELLO, model="claude-test"):
            seen.append(chunk)

    assert seen and all(c.type == "text" for c in seen)
    assert len(server.requests) == 1


async def test_stream_without_message_start_is_a_response_error(
    provider: AnthropicProvider, server: WireServer
) -> None:
    server.enqueue(Raw('event: ping\ndata: {"type": "ping"}\n\n', content_type="text/event-stream"))

    with pytest.raises(ProviderResponseError, match="message_start"):
        await collect(provider.stream(HELLO, model="claude-test"))


# -- errors and retries -------------------------------------------------------------------


async def test_rate_limit_honours_retry_after_then_succeeds(
    provider: AnthropicProvider, server: WireServer, sleeps: Sleeps
) -> None:
    server.enqueue(rate_limited(retry_after="3"), Reply(text="ok"))

    response = await provider.chat(HELLO, model="claude-test")

    assert response.content == "ok"
    assert len(server.requests) == 2 and sleeps == [3.0]


async def test_overloaded_is_retried(
    provider: AnthropicProvider, server: WireServer, sleeps: Sleeps
) -> None:
    server.enqueue(
        Status(529, "Overloaded", headers={"retry-after": "1"}), server_error(), Reply("ok")
    )

    assert (await provider.chat(HELLO, model="claude-test")).content == "ok"
    assert len(server.requests) == 3
    assert sleeps[0] == 1.0  # an overloaded server's advice is honoured too


async def test_retries_run_out(provider: AnthropicProvider, server: WireServer) -> None:
    server.enqueue(*[rate_limited()] * 4)
    with pytest.raises(ProviderRateLimitError) as caught:
        await provider.chat(HELLO, model="claude-test")
    assert caught.value.status_code == 429 and caught.value.provider == "anthropic"
    assert len(server.requests) == 4


async def test_unauthorized_is_not_retried(provider: AnthropicProvider, server: WireServer) -> None:
    server.enqueue(unauthorized(), Reply("never"))

    with pytest.raises(ProviderAuthError) as caught:
        await provider.chat(HELLO, model="claude-test")

    assert caught.value.status_code == 401
    assert "ANTHROPIC_API_KEY" in str(caught.value)
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "body",
    [
        malformed(),
        Raw("upstream connect error", content_type="text/plain"),
        Raw('{"type": "message", "content": 7}'),
    ],
)
async def test_malformed_bodies_raise_response_errors(
    provider: AnthropicProvider, server: WireServer, body: Raw
) -> None:
    server.enqueue(body, Reply("never"))

    with pytest.raises(ProviderResponseError):
        await provider.chat(HELLO, model="claude-test")

    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (Status(404, "model: claude-nope"), ProviderModelNotFoundError),
        (
            Status(400, "prompt is too long: 208310 tokens > 200000 maximum"),
            ProviderContextLengthError,
        ),
        (
            Status(400, "input length and `max_tokens` exceed context limit: 198000 + 4096"),
            ProviderContextLengthError,
        ),
        (Status(400, "messages: roles must alternate"), ProviderBadRequestError),
    ],
)
async def test_refusals_about_the_model_are_told_apart(
    provider: AnthropicProvider, server: WireServer, status: Status, cls: type[Exception]
) -> None:
    server.enqueue(status, Reply("never"))

    with pytest.raises(ProviderBadRequestError) as caught:
        await provider.chat(HELLO, model="claude-test")

    assert type(caught.value) is cls and not caught.value.retryable
    assert len(server.requests) == 1


async def test_slow_response_times_out(server: WireServer) -> None:
    server.enqueue(slow(2.0))
    async with AnthropicProvider(
        api_key="k", base_url=server.anthropic_base_url, timeout=0.2, max_retries=0
    ) as provider:
        with pytest.raises(ProviderTimeoutError):
            await provider.chat(HELLO, model="claude-test")


# -- construction -------------------------------------------------------------------------


def test_missing_api_key_names_the_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)

    with pytest.raises(ProviderAuthError, match="ANTHROPIC_API_KEY"):
        AnthropicProvider()


async def test_key_comes_from_the_environment(
    server: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "env-key")
    server.enqueue(Reply("ok"))
    async with AnthropicProvider(
        base_url=server.anthropic_base_url, default_max_tokens=256
    ) as provider:
        await provider.chat(HELLO, model="claude-test")
    assert sent_key(server.requests[0].headers) == "env-key"
    assert server.requests[0].body["max_tokens"] == 256


def test_timeouts_bound_connecting_apart_from_answering() -> None:
    default = AnthropicProvider(api_key="k")._client.timeout
    assert (default.connect, default.read) == (5.0, 600.0)
    given = httpx2.Timeout(30.0, connect=1.0)
    assert AnthropicProvider(api_key="k", timeout=given)._client.timeout == given


def test_importing_the_module_does_not_import_the_sdk() -> None:
    code = "import sys, victor.providers.anthropic; assert 'anthropic' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
