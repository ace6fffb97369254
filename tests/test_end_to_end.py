"""The whole agent loop over real HTTP: real SDKs, the wire server, the orchestrator."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from victor import AgentOrchestrator, Settings, tool
from victor.errors import ProviderAuthError
from victor.providers import AnthropicProvider, OpenAIProvider
from wire_server import Reply, WireServer, WireToolCall, unauthorized

# The SDK warns that the recipe's model name is near its end of life; not our concern here.
pytestmark = pytest.mark.filterwarnings("ignore:The model:DeprecationWarning")


@tool
async def get_weather(city: str) -> str:
    """Current weather in a city.

    Args:
        city: The city.
    """
    return f"18 C in {city}"


def providers(server: WireServer):
    return {
        "openai": OpenAIProvider(api_key="k", base_url=server.openai_base_url, max_retries=0),
        "anthropic": AnthropicProvider(
            api_key="k", base_url=server.anthropic_base_url, max_retries=0
        ),
    }


@pytest.mark.parametrize("name", ["openai", "anthropic"])
async def test_streamed_tool_loop_over_http(server: WireServer, name: str):
    server.enqueue(
        Reply(tool_calls=[WireToolCall("get_weather", {"city": "Paris"})], chunk_size=2),
        Reply(text="It is 18 C in Paris.", chunk_size=4, input_tokens=40, output_tokens=9),
    )
    provider = providers(server)[name]
    async with AgentOrchestrator(
        settings=Settings(),
        provider=provider,
        model="gpt-4o" if name == "openai" else "claude-sonnet-4-5",
        tools=[get_weather],
    ) as orch:
        chunks = [c async for c in orch.stream("Weather in Paris?", session_id="e2e")]
        history = await orch.history("e2e")
    text = "".join(c.text for c in chunks if c.type == "text")
    assert text == "It is 18 C in Paris."
    assert len([c for c in chunks if c.type == "text"]) > 1  # really streamed in pieces
    ends = [c for c in chunks if c.type == "tool_end"]
    assert ends[0].tool_result.content == "18 C in Paris"
    final = chunks[-1].response
    assert final.usage.requests == 2 and final.usage.output_tokens >= 9
    assert final.cost is not None
    assert [m.role for m in history] == ["user", "assistant", "tool", "assistant"]
    # What the model saw on the second call: the tool result, tied to its call.
    second = server.requests[-1].body
    assert "18 C in Paris" in str(second["messages"])
    assert "get_weather" in str(second["tools"])


@pytest.mark.parametrize("name", ["openai", "anthropic"])
async def test_auth_failure_is_typed_and_history_untouched(server: WireServer, name: str):
    server.enqueue(Reply(text="hello"), unauthorized())
    async with AgentOrchestrator(
        settings=Settings(), provider=providers(server)[name], model="m"
    ) as orch:
        await orch.chat("hi", session_id="auth")
        with pytest.raises(ProviderAuthError):
            await orch.chat("again", session_id="auth")
        assert [m.content for m in await orch.history("auth")] == ["hi", "hello"]


def test_cli_chat_against_a_local_openai_compatible_server(server: WireServer):
    server.enqueue(Reply(text="Hi from the local model", chunk_size=5))
    result = CliRunner().invoke(
        __import__("victor.cli.main", fromlist=["app"]).app,
        ["chat", "--base-url", server.openai_base_url, "--model", "llama3"],
        input="hello\n/exit\n",
    )
    assert result.exit_code == 0, result.output
    assert "Hi from the local model" in result.output
    assert server.requests[-1].body["model"] == "llama3"
