"""OpenAIProvider streaming through the real ``openai`` SDK over real HTTP to the wire server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from provider_kit import HELLO, WEATHER, Sleeps, collect
from victor.errors import ProviderBadRequestError, ProviderConnectionError, ProviderResponseError
from victor.protocols.messages import StreamChunk, ToolCall
from victor.providers._retry import RetryPolicy
from victor.providers.openai import OpenAIProvider
from wire_server import Raw, Reply, WireServer, WireToolCall, server_error

PARIS_AND_ROME = [
    WireToolCall("get_weather", {"city": "Paris"}, id="call_p"),
    WireToolCall("get_weather", {"city": "Rome"}, id="call_r"),
]


@pytest.fixture
async def provider(server: WireServer, sleeps: Sleeps) -> AsyncIterator[OpenAIProvider]:
    async with OpenAIProvider(
        api_key="test-key",
        base_url=server.openai_base_url,
        retry_policy=RetryPolicy(max_retries=3, sleep=sleeps),
    ) as p:
        yield p


def tool_calls(chunks: list[StreamChunk]) -> list[ToolCall | None]:
    return [c.tool_call for c in chunks if c.type == "tool_call"]


# -- streaming ----------------------------------------------------------------------------


async def test_stream_text_tool_calls_and_usage(
    provider: OpenAIProvider, server: WireServer
) -> None:
    server.enqueue(
        Reply(
            text="Let me check the weather.",
            tool_calls=[
                WireToolCall("get_weather", {"city": "Paris"}, id="call_p"),
                WireToolCall("get_weather", {"city": "Rome"}, id="call_r"),
            ],
            chunk_size=4,
            interleave=True,  # the argument pieces of both calls alternate
            input_tokens=20,
            output_tokens=9,
        )
    )

    chunks = await collect(provider.stream(HELLO, model="gpt-test", tools=[WEATHER]))

    texts = [c.text for c in chunks if c.type == "text"]
    assert len(texts) > 1 and "".join(texts) == "Let me check the weather."
    calls = [c.tool_call for c in chunks if c.type == "tool_call"]
    assert calls == [
        ToolCall(id="call_p", name="get_weather", arguments={"city": "Paris"}),
        ToolCall(id="call_r", name="get_weather", arguments={"city": "Rome"}),
    ]
    assert [c.type for c in chunks[-2:]] == ["usage", "done"]
    assert chunks[-2].usage is not None and chunks[-2].usage.input_tokens == 20
    done = chunks[-1].response
    assert done is not None
    assert done.content == "Let me check the weather."
    assert done.tool_calls == calls
    assert done.usage.output_tokens == 9
    assert done.finish_reason == "tool_calls"
    body = server.requests[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


async def test_stream_invalid_tool_arguments_keep_the_raw_text(
    provider: OpenAIProvider, server: WireServer
) -> None:
    server.enqueue(Reply(tool_calls=[WireToolCall("get_weather", '{"city": Paris}', id="c1")]))

    chunks = await collect(provider.stream(HELLO, model="gpt-test", tools=[WEATHER]))

    [call] = [c.tool_call for c in chunks if c.type == "tool_call"]
    assert call is not None
    assert call.arguments == {} and call.raw_arguments == '{"city": Paris}'


async def test_stream_is_retried_when_it_fails_before_any_chunk(
    provider: OpenAIProvider, server: WireServer, sleeps: Sleeps
) -> None:
    server.enqueue(
        server_error(503),
        Reply(text="never shown", error_after=1, error_type="server_error"),  # before any text
        Reply(text="recovered"),
    )

    chunks = await collect(provider.stream(HELLO, model="gpt-test"))

    assert chunks[-1].response is not None and chunks[-1].response.content == "recovered"
    assert len(server.requests) == 3 and len(sleeps) == 2


async def test_stream_error_events_are_classified_by_type(
    provider: OpenAIProvider, server: WireServer
) -> None:
    server.enqueue(Reply(text="x", error_after=1, error_type="invalid_request_error"), Reply("y"))

    with pytest.raises(ProviderBadRequestError, match="scripted stream failure"):
        await collect(provider.stream(HELLO, model="gpt-test"))
    assert len(server.requests) == 1


async def test_stream_is_not_retried_after_text_was_yielded(
    provider: OpenAIProvider, server: WireServer
) -> None:
    server.enqueue(Reply(text="Hello there, friend", chunk_size=2, cut_after=4), Reply(text="x"))

    seen: list[StreamChunk] = []
    with pytest.raises(ProviderConnectionError):
        async for chunk in provider.stream(HELLO, model="gpt-test"):
            seen.append(chunk)

    assert [c.type for c in seen] == ["text"] * len(seen) and seen
    assert len(server.requests) == 1


# -- parallel tool calls in the shapes servers send them ----------------------------------


@pytest.mark.parametrize(
    "shape",
    [
        {"tool_call_index": "zero", "whole_tool_calls": True},  # Ollama
        {"tool_call_index": "zero"},  # pieces of every call numbered 0
        {"tool_call_index": "omit"},  # pieces without index (some gateways)
        {"tool_call_index": "omit", "whole_tool_calls": True},
    ],
)
async def test_parallel_tool_calls_are_told_apart_without_usable_indexes(
    provider: OpenAIProvider, server: WireServer, shape: dict[str, object]
) -> None:
    server.enqueue(Reply(tool_calls=PARIS_AND_ROME, chunk_size=5, **shape))  # type: ignore[arg-type]

    chunks = await collect(provider.stream(HELLO, model="llama3", tools=[WEATHER]))

    expected = [
        ToolCall(id="call_p", name="get_weather", arguments={"city": "Paris"}),
        ToolCall(id="call_r", name="get_weather", arguments={"city": "Rome"}),
    ]
    assert tool_calls(chunks) == expected
    done = chunks[-1].response
    assert done is not None and done.tool_calls == expected


async def test_calls_of_different_tools_without_ids_are_told_apart_by_name(
    provider: OpenAIProvider, server: WireServer
) -> None:
    # A server that sends neither ids nor indexes: the name starts a new call.
    body = "".join(
        f"data: {line}\n\n"
        for line in [
            '{"choices": [{"index": 0, "delta": {"tool_calls": [{"function": '
            '{"name": "get_weather", "arguments": "{\\"city\\": "}}]}}]}',
            '{"choices": [{"index": 0, "delta": {"tool_calls": [{"function": '
            '{"arguments": "\\"Oslo\\"}"}}]}}]}',
            '{"choices": [{"index": 0, "delta": {"tool_calls": [{"function": '
            '{"name": "get_time", "arguments": "{}"}}]}}]}',
            '{"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}',
            "[DONE]",
        ]
    )
    server.enqueue(Raw(body, content_type="text/event-stream"))

    chunks = await collect(provider.stream(HELLO, model="local", tools=[WEATHER]))

    weather, time = tool_calls(chunks)
    assert weather is not None and time is not None
    assert (weather.name, weather.arguments) == ("get_weather", {"city": "Oslo"})
    assert (time.name, time.arguments) == ("get_time", {})
    assert weather.id != time.id  # generated, since the server sent none


async def test_pieces_repeating_the_id_and_name_continue_the_call(
    provider: OpenAIProvider, server: WireServer
) -> None:
    piece = (
        '{{"choices": [{{"index": 0, "delta": {{"tool_calls": [{{"index": 0, "id": "c1", '
        '"function": {{"name": "get_weather", "arguments": {}}}}}]}}}}]}}'
    )
    body = "".join(
        f"data: {line}\n\n"
        for line in [
            piece.format('"{\\"city\\": "'),
            piece.format('"\\"Oslo\\"}"'),
            '{"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}',
            "[DONE]",
        ]
    )
    server.enqueue(Raw(body, content_type="text/event-stream"))

    chunks = await collect(provider.stream(HELLO, model="local", tools=[WEATHER]))

    assert tool_calls(chunks) == [ToolCall(id="c1", name="get_weather", arguments={"city": "Oslo"})]


# -- streams that end early ---------------------------------------------------------------


async def test_a_stream_closed_before_the_finish_reason_is_retried(
    provider: OpenAIProvider, server: WireServer, sleeps: Sleeps
) -> None:
    # Events: the role, the head of the call, one piece of its arguments; then a clean end.
    cut = Reply(tool_calls=[WireToolCall("get_weather", {"city": "Paris"})], end_after=3)
    server.enqueue(cut, Reply(text="recovered"))

    chunks = await collect(provider.stream(HELLO, model="gpt-test", tools=[WEATHER]))

    assert tool_calls(chunks) == []  # the half call was never handed out
    assert chunks[-1].response is not None and chunks[-1].response.content == "recovered"
    assert len(server.requests) == 2 and len(sleeps) == 1


async def test_a_stream_closed_before_the_finish_reason_after_text_raises(
    provider: OpenAIProvider, server: WireServer
) -> None:
    server.enqueue(Reply(text="Hello there, friend", chunk_size=2, end_after=4), Reply("x"))

    seen: list[StreamChunk] = []
    with pytest.raises(ProviderConnectionError, match="ended before the model finished"):
        async for chunk in provider.stream(HELLO, model="gpt-test"):
            seen.append(chunk)

    assert seen and all(c.type == "text" for c in seen)
    assert len(server.requests) == 1  # text was shown: not replayed


async def test_a_stream_without_any_data_is_a_response_error(
    provider: OpenAIProvider, server: WireServer
) -> None:
    server.enqueue(Raw("data: [DONE]\n\n", content_type="text/event-stream"))

    with pytest.raises(ProviderResponseError, match="without any data"):
        await collect(provider.stream(HELLO, model="gpt-test"))


# -- stream_options -----------------------------------------------------------------------


async def test_stream_options_of_the_caller_are_sent_as_given(
    provider: OpenAIProvider, server: WireServer
) -> None:
    server.enqueue(Reply(text="a"), Reply(text="b"), Reply(text="c"))

    chunks = await collect(
        provider.stream(HELLO, model="gpt-test", stream_options={"include_usage": False})
    )
    await collect(provider.stream(HELLO, model="gpt-test", stream_options=None))
    # The same options on a call that is not streamed: the API would refuse them there.
    await provider.chat(HELLO, model="gpt-test", stream_options={"include_usage": True})

    first, second, third = (r.body for r in server.requests)
    assert first["stream_options"] == {"include_usage": False}
    assert "stream_options" not in second and second["stream"] is True
    assert "stream_options" not in third and "stream" not in third
    usage = chunks[-1].response.usage if chunks[-1].response else None
    assert usage is not None and usage.input_tokens == 0  # none was asked for


async def test_stream_usage_can_be_turned_off(server: WireServer) -> None:
    server.enqueue(Reply(text="ok"))
    async with OpenAIProvider(
        api_key="k", base_url=server.openai_base_url, stream_usage=False
    ) as provider:
        chunks = await collect(provider.stream(HELLO, model="gpt-test"))

    assert "stream_options" not in server.requests[0].body
    assert chunks[-1].response is not None and chunks[-1].response.content == "ok"
