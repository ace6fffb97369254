import pytest

from victor import AgentOrchestrator, Settings, tool
from victor.errors import ProviderError, ProviderRateLimitError, ProviderServerError
from victor.protocols import ChatResponse, Message
from victor.providers import (
    FunctionProvider,
    ScriptedProvider,
    SimulatedClock,
    SimulatedProvider,
)


@tool
def search_docs(query: str) -> str:
    """Search the documentation."""
    return f"found {query}"


@tool
def get_weather(city: str) -> str:
    """Weather for a city."""
    return f"sunny in {city}"


USER = [Message(role="user", content="what is the weather in Paris")]


async def test_scripted_plays_in_order_and_records_calls():
    provider = ScriptedProvider(
        [
            "one",
            {
                "content": "two",
                "tool_calls": [{"name": "get_weather", "arguments": {"city": "x"}, "id": "c9"}],
            },
        ]
    )
    first = await provider.chat(USER, model="m", temperature=0.1)
    second = await provider.chat(USER, model="m", tools=[get_weather])
    assert first.content == "one" and first.finish_reason == "stop"
    assert second.tool_calls[0].id == "c9" and second.finish_reason == "tool_calls"
    assert provider.calls[1]["tools"] == ["get_weather"]
    assert provider.calls[0]["temperature"] == 0.1
    with pytest.raises(ProviderError, match="ran out after 2"):
        await provider.chat(USER, model="m")


async def test_scripted_rejects_malformed_items_clearly():
    with pytest.raises(ValueError):
        ScriptedProvider([])
    with pytest.raises(ValueError, match="unknown keys"):
        await ScriptedProvider([{"text": "typo"}]).chat(USER, model="m")
    with pytest.raises(ValueError, match="name"):
        await ScriptedProvider([{"tool_calls": [{"arguments": {}}]}]).chat(USER, model="m")


async def test_function_provider_sync_and_async():
    async def answer(messages, tools):
        return ChatResponse(content=f"{len(messages)} messages, {len(tools)} tools")

    assert (
        await FunctionProvider(answer).chat(USER, model="m", tools=[get_weather])
    ).content == "1 messages, 1 tools"
    echo = FunctionProvider(lambda messages, tools: messages[-1].content.upper())
    assert (await echo.chat(USER, model="m")).content == USER[0].content.upper()


async def test_simulated_is_deterministic_for_a_seed():
    async def run(seed):
        provider = SimulatedProvider(seed=seed, output_tokens=40, tool_call_rate=0.5)
        out = []
        for _ in range(30):
            r = await provider.chat(USER, model="m", tools=[search_docs, get_weather])
            out.append((r.content, [c.name for c in r.tool_calls], r.usage.output_tokens))
        return out

    assert await run(3) == await run(3)
    assert await run(3) != await run(4)


async def test_simulated_picks_the_matching_tool_and_valid_arguments():
    provider = SimulatedProvider(seed=1, tool_call_rate=1.0)
    response = await provider.chat(USER, model="m", tools=[search_docs, get_weather])
    call = response.tool_calls[0]
    assert call.name == "get_weather" and isinstance(call.arguments["city"], str)


async def test_simulated_errors_at_the_given_rate():
    provider = SimulatedProvider(seed=5, error_rate=0.3)
    errors = 0
    for _ in range(500):
        try:
            await provider.chat(USER, model="m")
        except (ProviderServerError, ProviderRateLimitError) as exc:
            assert exc.retryable
            errors += 1
    assert 100 < errors < 200


async def test_simulated_latency_is_applied():
    import time

    provider = SimulatedProvider(seed=1, latency_ms=30, latency_sigma=0)
    start = time.perf_counter()
    await provider.chat(USER, model="m")
    assert time.perf_counter() - start >= 0.029


async def test_simulated_drives_the_whole_loop():
    provider = SimulatedProvider(seed=2, tool_call_rate=1.0)
    async with AgentOrchestrator(
        settings=Settings(),
        provider=provider,
        model="gpt-4o-mini",
        tools=[search_docs, get_weather],
    ) as orch:
        response = await orch.chat("what is the weather in Paris", session_id="sim")
    assert response.tool_calls[0].name == "get_weather"
    assert "sunny in" in response.content


async def test_a_simulated_clock_makes_latency_the_simulated_one():
    clock = SimulatedClock()
    provider = SimulatedProvider(
        seed=1, latency_ms=250, latency_sigma=0, tool_call_rate=1.0, clock=clock
    )
    async with AgentOrchestrator(
        settings=Settings(session_store="memory"),
        provider=provider,
        tools=[get_weather],
        clock=clock,
    ) as orchestrator:
        response = await orchestrator.chat("What's the weather in Paris?")
    # Two model calls (the tool call, then the answer) of 250 ms each, and no real wait.
    assert len(response.tool_results) == 1
    assert response.latency_ms == pytest.approx(500.0) and clock() == pytest.approx(0.5)
