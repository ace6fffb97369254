"""OpenAIProvider through the real ``openai`` SDK over real HTTP to the wire server."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator

import httpx2
import openai
import pytest

from provider_kit import HELLO, WEATHER, Sleeps
from victor.errors import (
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderContextLengthError,
    ProviderModelNotFoundError,
    ProviderRateLimitError,
    ProviderResponseError,
    ProviderServerError,
    ProviderTimeoutError,
)
from victor.protocols.messages import Message, ToolCall
from victor.providers._retry import RetryPolicy
from victor.providers.openai import OpenAIProvider, _default_max_tokens_field, _is_openai_url
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
async def provider(server: WireServer, sleeps: Sleeps) -> AsyncIterator[OpenAIProvider]:
    async with OpenAIProvider(
        api_key="test-key",
        base_url=server.openai_base_url,
        retry_policy=RetryPolicy(max_retries=3, sleep=sleeps),
    ) as p:
        yield p


# -- plain calls and conversion -----------------------------------------------------------


async def test_plain_chat(provider: OpenAIProvider, server: WireServer) -> None:
    server.enqueue(Reply(text="Hi there!", input_tokens=11, output_tokens=3, cached_tokens=4))

    response = await provider.chat(HELLO, model="gpt-test", temperature=0.2, max_tokens=64)

    assert response.content == "Hi there!"
    assert response.tool_calls == []
    assert response.model == "gpt-test"
    assert response.finish_reason == "stop"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (15, 3)
    assert response.usage.cached_input_tokens == 4
    assert response.usage.requests == 1
    [request] = server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer test-key"
    assert request.body == {
        "model": "gpt-test",
        "messages": [{"role": "user", "content": "Hello!"}],
        "temperature": 0.2,
        "max_tokens": 64,  # a compatible server gets the classic field
    }


async def test_conversation_with_tool_calls_and_results_is_converted(
    provider: OpenAIProvider, server: WireServer
) -> None:
    server.enqueue(Reply(text="It is sunny."))
    conversation = [
        Message(role="system", content="Be brief."),
        Message(role="user", content="Weather in Paris and Rome?"),
        Message(
            role="assistant",
            tool_calls=[
                ToolCall(id="call_a", name="get_weather", arguments={"city": "Paris"}),
                ToolCall(id="call_b", name="get_weather", arguments={}, raw_arguments="{bad"),
            ],
        ),
        Message(role="tool", tool_call_id="call_a", name="get_weather", content="sunny"),
        Message(
            role="tool",
            tool_call_id="call_b",
            name="get_weather",
            content="bad args",
            is_error=True,
        ),
    ]

    await provider.chat(conversation, model="gpt-test", tools=[WEATHER])

    body = server.requests[0].body
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_b", "content": "bad args"},
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather of a city.",
                "parameters": WEATHER.parameters,
            },
        }
    ]


async def test_tool_calls_in_the_answer_are_parsed(
    provider: OpenAIProvider, server: WireServer
) -> None:
    server.enqueue(
        Reply(
            tool_calls=[
                WireToolCall("get_weather", {"city": "Paris"}, id="call_1"),
                WireToolCall("get_weather", '{"city": "Ro', id="call_2"),
                WireToolCall("get_weather", "[1, 2]", id="call_3"),
            ]
        )
    )

    response = await provider.chat(HELLO, model="gpt-test", tools=[WEATHER])

    assert response.finish_reason == "tool_calls"
    assert response.content == ""
    first, truncated, not_an_object = response.tool_calls
    assert first == ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"})
    assert truncated.arguments == {} and truncated.raw_arguments == '{"city": "Ro'
    assert not_an_object.arguments == {} and not_an_object.raw_arguments == "[1, 2]"


async def test_options_reach_the_request(provider: OpenAIProvider, server: WireServer) -> None:
    server.enqueue(Reply(text="ok"))

    await provider.chat(HELLO, model="gpt-test", stop=["END"], seed=7, top_k=40)

    body = server.requests[0].body
    assert body["stop"] == ["END"] and body["seed"] == 7  # known to the SDK
    assert body["top_k"] == 40  # unknown to the SDK: sent in the body for the server


async def test_max_tokens_field_can_be_chosen(server: WireServer) -> None:
    server.enqueue(Reply(text="ok"))
    async with OpenAIProvider(
        api_key="k", base_url=server.openai_base_url, max_tokens_field="max_completion_tokens"
    ) as provider:
        await provider.chat(HELLO, model="o-test", max_tokens=10)

    assert server.requests[0].body["max_completion_tokens"] == 10
    assert "max_tokens" not in server.requests[0].body
    assert _default_max_tokens_field("https://api.openai.com/v1") == "max_completion_tokens"
    assert _default_max_tokens_field("http://localhost:11434/v1") == "max_tokens"


# -- errors and retries -------------------------------------------------------------------


async def test_rate_limit_honours_retry_after_then_succeeds(
    provider: OpenAIProvider, server: WireServer, sleeps: Sleeps
) -> None:
    server.enqueue(rate_limited(retry_after="2"), rate_limited(retry_after_ms="1500"), Reply("ok"))

    response = await provider.chat(HELLO, model="gpt-test")

    assert response.content == "ok"
    assert len(server.requests) == 3
    assert sleeps == [2.0, 1.5]


async def test_server_errors_are_retried_until_the_budget_is_spent(
    provider: OpenAIProvider, server: WireServer, sleeps: Sleeps
) -> None:
    server.enqueue(*[server_error()] * 4)

    with pytest.raises(ProviderServerError) as caught:
        await provider.chat(HELLO, model="gpt-test")

    assert caught.value.status_code == 500 and caught.value.provider == "openai"
    assert len(server.requests) == 4  # one call and three retries
    assert len(sleeps) == 3 and all(0 <= d <= 0.5 * 2**i for i, d in enumerate(sleeps))


async def test_unauthorized_is_not_retried(provider: OpenAIProvider, server: WireServer) -> None:
    server.enqueue(unauthorized(), Reply("never"))

    with pytest.raises(ProviderAuthError) as caught:
        await provider.chat(HELLO, model="gpt-test")

    assert caught.value.status_code == 401 and not caught.value.retryable
    assert "OPENAI_API_KEY" in str(caught.value)
    assert len(server.requests) == 1


async def test_an_exhausted_quota_is_not_retried(
    provider: OpenAIProvider, server: WireServer
) -> None:
    server.enqueue(Status(429, "quota exceeded", error_type="insufficient_quota"), Reply("no"))

    with pytest.raises(ProviderRateLimitError) as caught:
        await provider.chat(HELLO, model="gpt-test")

    assert not caught.value.retryable and len(server.requests) == 1


async def test_a_long_retry_after_gives_up_at_once(
    provider: OpenAIProvider, server: WireServer, sleeps: Sleeps
) -> None:
    server.enqueue(rate_limited(retry_after="3600"), Reply("never"))

    with pytest.raises(ProviderRateLimitError) as caught:
        await provider.chat(HELLO, model="gpt-test")

    assert caught.value.retry_after == 3600.0
    assert len(server.requests) == 1 and sleeps == []


@pytest.mark.parametrize(
    "body",
    [
        malformed(),  # JSON content type, broken JSON
        Raw("<html>gateway</html>", content_type="text/html"),  # not JSON at all
        Raw('{"object": "chat.completion", "choices": []}'),  # JSON, but no answer
        Raw('{"choices": [{"message": 42}]}'),  # JSON of the wrong shape
    ],
)
async def test_malformed_bodies_raise_response_errors(
    provider: OpenAIProvider, server: WireServer, body: Raw
) -> None:
    server.enqueue(body, Reply("never"))

    with pytest.raises(ProviderResponseError):
        await provider.chat(HELLO, model="gpt-test")

    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        # OpenAI: the code says it.
        (
            Status(404, "The model `gpt-9` does not exist", code="model_not_found"),
            ProviderModelNotFoundError,
        ),
        (
            Status(400, "Input tokens exceed the limit.", code="context_length_exceeded"),
            ProviderContextLengthError,
        ),
        # Compatible servers: only the wording does.
        (Status(404, 'model "llama9" not found, try pulling it first'), ProviderModelNotFoundError),
        (
            Status(400, "This model's maximum context length is 4096 tokens. However, ..."),
            ProviderContextLengthError,
        ),
        (
            Status(400, "the request exceeds the available context size, try increasing it"),
            ProviderContextLengthError,
        ),
        (Status(400, "'messages' must not be empty"), ProviderBadRequestError),
        (Status(404, "404 page not found"), ProviderBadRequestError),
    ],
)
async def test_refusals_about_the_model_are_told_apart(
    provider: OpenAIProvider, server: WireServer, status: Status, cls: type[Exception]
) -> None:
    server.enqueue(status, Reply("never"))

    with pytest.raises(ProviderBadRequestError) as caught:
        await provider.chat(HELLO, model="gpt-test")

    assert type(caught.value) is cls and not caught.value.retryable
    assert len(server.requests) == 1


async def test_bad_request_is_not_retried(provider: OpenAIProvider, server: WireServer) -> None:
    with pytest.raises(ProviderBadRequestError, match="no scripted response"):
        await provider.chat(HELLO, model="gpt-test")
    assert len(server.requests) == 1


async def test_slow_response_times_out(server: WireServer) -> None:
    server.enqueue(slow(2.0))
    async with OpenAIProvider(
        api_key="k", base_url=server.openai_base_url, timeout=0.2, max_retries=0
    ) as provider:
        with pytest.raises(ProviderTimeoutError) as caught:
            await provider.chat(HELLO, model="gpt-test")
    assert caught.value.retryable


async def test_a_timeout_is_retried(server: WireServer, sleeps: Sleeps) -> None:
    server.enqueue(slow(2.0), Reply("in time"))
    async with OpenAIProvider(
        api_key="k",
        base_url=server.openai_base_url,
        timeout=0.2,
        retry_policy=RetryPolicy(max_retries=1, sleep=sleeps),
    ) as provider:
        response = await provider.chat(HELLO, model="gpt-test")
    assert response.content == "in time" and len(server.requests) == 2


# -- construction -------------------------------------------------------------------------


def test_missing_api_key_names_the_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)

    with pytest.raises(ProviderAuthError) as caught:
        OpenAIProvider()

    assert "OPENAI_API_KEY" in str(caught.value) and "base_url" in str(caught.value)


async def test_local_server_needs_no_key(
    server: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    server.enqueue(Reply("local"))
    async with OpenAIProvider(base_url=server.openai_base_url) as provider:
        assert (await provider.chat(HELLO, model="llama3")).content == "local"
    assert server.requests[0].headers["authorization"] == "Bearer not-needed"


async def test_the_environment_key_is_not_sent_to_a_base_url_given_in_code(
    server: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-users-real-openai-key")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    server.enqueue(Reply("local"), Reply("gateway"))

    async with OpenAIProvider(base_url=server.openai_base_url) as provider:
        await provider.chat(HELLO, model="llama3")
    async with OpenAIProvider(api_key="gateway-key", base_url=server.openai_base_url) as given:
        await given.chat(HELLO, model="llama3")

    sent = [r.headers["authorization"] for r in server.requests]
    assert sent == ["Bearer not-needed", "Bearer gateway-key"]
    assert all("sk-users-real-openai-key" not in str(r.headers) for r in server.requests)


def test_the_environment_key_is_used_for_openai_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "env-key")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)

    for base_url in (None, "https://api.openai.com/v1", "https://eu.api.openai.com/v1"):
        assert OpenAIProvider(base_url=base_url)._client.api_key == "env-key"
    assert _is_openai_url("https://api.openai.com/v1")
    assert not _is_openai_url("https://api.openai.com.evil.example/v1")
    assert not _is_openai_url("http://api.openai.com/v1")  # never in clear text
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(ProviderAuthError):  # OpenAI itself needs a real key
        OpenAIProvider(base_url="https://api.openai.com/v1")


async def test_key_and_base_url_come_from_the_environment(
    server: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "env-key")
    monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
    server.enqueue(Reply("ok"))
    async with OpenAIProvider(default_headers={"x-team": "victor"}) as provider:
        await provider.chat(HELLO, model="gpt-test")
    headers = server.requests[0].headers
    assert headers["authorization"] == "Bearer env-key" and headers["x-team"] == "victor"


async def test_a_given_client_is_used_without_sdk_retries(server: WireServer) -> None:
    client = openai.AsyncOpenAI(api_key="own", base_url=server.openai_base_url, max_retries=5)
    server.enqueue(server_error(), Reply("never"))
    provider = OpenAIProvider(client=client, max_retries=0)

    with pytest.raises(ProviderServerError):
        await provider.chat(HELLO, model="gpt-test")
    await provider.aclose()

    assert len(server.requests) == 1  # neither the SDK nor Victor retried
    assert not client.is_closed()  # the caller's client stays theirs
    await client.close()


def test_timeouts_bound_connecting_apart_from_answering() -> None:
    default = OpenAIProvider(api_key="k")._client.timeout
    assert (default.connect, default.read, default.write) == (5.0, 600.0, 600.0)
    short = OpenAIProvider(api_key="k", timeout=2.0)._client.timeout
    assert (short.connect, short.read) == (2.0, 2.0)  # connecting never waits longer
    given = httpx2.Timeout(30.0, connect=1.0)
    assert OpenAIProvider(api_key="k", timeout=given)._client.timeout == given
    with pytest.raises(TypeError):
        OpenAIProvider(api_key="k", timeout="soon")  # type: ignore[arg-type]


def test_importing_the_module_does_not_import_the_sdk() -> None:
    code = "import sys, victor.providers.openai; assert 'openai' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
