import asyncio

import pytest

from helpers import CollectingExporter
from victor import AgentOrchestrator, Settings, tool
from victor.agent.coordinators import AnalyticsCoordinator, ConfigCoordinator
from victor.errors import ConfigError, ProviderAuthError, ToolLoopLimitError
from victor.providers import FunctionProvider, ScriptedProvider
from victor.sessions import InMemorySessionStore


@tool
async def get_weather(city: str) -> str:
    """Weather in a city.

    Args:
        city: The city.
    """
    return f"sunny in {city}"


@tool
def explode() -> str:
    """Always fails."""
    raise ValueError("kaboom")


def make(script, **kwargs):
    kwargs.setdefault("tools", [get_weather, explode])
    return AgentOrchestrator(
        settings=Settings(), provider=ScriptedProvider(script), model="gpt-4o", **kwargs
    )


async def test_text_turn_returns_response_with_usage_cost_and_latency():
    async with make(["Hello there"]) as orch:
        response = await orch.chat("Hi!", session_id="s1")
    assert str(response) == "Hello there"
    assert response.content == "Hello there"
    assert response.tool_calls == []
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert response.cost is not None and response.cost > 0
    assert response.model == "gpt-4o"
    assert response.latency_ms >= 0
    assert response.session_id == "s1"


async def test_tool_turn_runs_the_tool_and_feeds_the_result_back():
    seen = []

    def model(messages, tools):
        seen.append(messages)
        if messages[-1].role == "user":
            return {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}
        return f"Result: {messages[-1].content}"

    orch = AgentOrchestrator(
        settings=Settings(), provider=FunctionProvider(model), model="gpt-4o", tools=[get_weather]
    )
    response = await orch.chat("Weather in Paris?", session_id="s")
    assert response.content == "Result: sunny in Paris"
    assert [c.name for c in response.tool_calls] == ["get_weather"]
    assert response.tool_results[0].content == "sunny in Paris"
    assert response.usage.requests == 2
    roles = [m.role for m in await orch.history("s")]
    assert roles == ["user", "assistant", "tool", "assistant"]
    await orch.aclose()


async def test_several_tool_calls_run_in_parallel():
    @tool
    async def slow(n: int) -> str:
        """Sleeps."""
        await asyncio.sleep(0.2)
        return str(n)

    script = [{"tool_calls": [{"name": "slow", "arguments": {"n": i}} for i in range(5)]}, "done"]
    async with make(script, tools=[slow]) as orch:
        loop = asyncio.get_running_loop()
        start = loop.time()
        response = await orch.chat("go", session_id="p")
        elapsed = loop.time() - start
    assert [r.content for r in response.tool_results] == ["0", "1", "2", "3", "4"]
    assert elapsed < 0.8  # five 0.2 s tools, concurrently


async def test_tool_failures_are_reported_to_the_model_not_raised():
    script = [
        {
            "tool_calls": [
                {"name": "explode", "arguments": {}},
                {"name": "no_such_tool", "arguments": {}},
                {"name": "get_weather", "arguments": {"town": "x"}},
                {"name": "get_weather", "arguments": "{not json"},
            ]
        },
        "I could not do it",
    ]
    provider = ScriptedProvider(script)
    orch = AgentOrchestrator(
        settings=Settings(), provider=provider, model="m", tools=[get_weather, explode]
    )
    response = await orch.chat("try", session_id="e")
    assert response.content == "I could not do it"
    results = response.tool_results
    assert all(r.is_error for r in results)
    assert "ValueError: kaboom" in results[0].content
    assert "unknown tool 'no_such_tool'" in results[1].content
    assert "get_weather" in results[1].content  # lists the available tools
    assert "city" in results[2].content and "town" in results[2].content
    assert "not a JSON object" in results[3].content
    tool_messages = [m for m in provider.calls[1]["messages"] if m.role == "tool"]
    assert len(tool_messages) == 4 and all(m.is_error for m in tool_messages)
    await orch.aclose()


async def test_endless_tool_calls_stop_with_a_clear_error_and_keep_history():
    def model(messages, tools):
        if messages[-1].content == "hello":
            return "first"
        return {"tool_calls": [{"name": "get_weather", "arguments": {"city": "a"}}]}

    orch = AgentOrchestrator(
        settings=Settings(max_tool_iterations=3),
        provider=FunctionProvider(model),
        model="m",
        tools=[get_weather],
    )
    await orch.chat("hello", session_id="loop")
    before = await orch.history("loop")
    with pytest.raises(ToolLoopLimitError, match="after 3 rounds"):
        await orch.chat("now loop", session_id="loop")
    assert await orch.history("loop") == before
    await orch.aclose()


async def test_provider_failure_leaves_history_as_it_was():
    orch = make(["ok", ProviderAuthError("bad key", provider="x", status_code=401), "fine"])
    await orch.chat("one", session_id="f")
    before = await orch.history("f")
    with pytest.raises(ProviderAuthError):
        await orch.chat("two", session_id="f")
    assert await orch.history("f") == before
    assert (await orch.chat("three", session_id="f")).content == "fine"
    assert [m.content for m in await orch.history("f")] == ["one", "ok", "three", "fine"]
    await orch.aclose()


async def test_bad_input_is_rejected_clearly():
    async with make(["x"]) as orch:
        with pytest.raises(ValueError, match="empty"):
            await orch.chat("   ")
        with pytest.raises(TypeError):
            await orch.chat(None)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="session_id"):
            await orch.chat("hi", session_id="")
        assert await orch.history("never-seen") == []


async def test_unknown_session_starts_a_new_one_and_generated_ids_are_unique():
    async with make(["a", "b"]) as orch:
        r1 = await orch.chat("hi")
        r2 = await orch.chat("hi")
    assert r1.session_id and r2.session_id and r1.session_id != r2.session_id


async def test_concurrent_turns_on_one_session_do_not_interleave():
    active = 0
    overlap = False

    async def model(messages, tools):
        nonlocal active, overlap
        active += 1
        overlap = overlap or active > 1
        await asyncio.sleep(0.01)
        active -= 1
        return f"echo {messages[-1].content}"

    orch = AgentOrchestrator(settings=Settings(), provider=FunctionProvider(model), model="m")
    await asyncio.gather(*(orch.chat(f"m{i}", session_id="same") for i in range(10)))
    history = await orch.history("same")
    assert not overlap
    assert len(history) == 20
    for user, answer in zip(history[::2], history[1::2], strict=True):
        assert answer.content == f"echo {user.content}"
    # Different sessions do run concurrently.
    await asyncio.gather(*(orch.chat("x", session_id=f"other{i}") for i in range(10)))
    assert overlap
    await orch.aclose()


async def test_history_persists_in_sqlite_across_orchestrators():
    async with make(["first answer"]) as orch:
        await orch.chat("first", session_id="persist")
    provider = ScriptedProvider(["second answer"])
    async with AgentOrchestrator(settings=Settings(), provider=provider, model="m") as orch:
        await orch.chat("second", session_id="persist")
    sent = [m.content for m in provider.calls[0]["messages"]]
    assert sent == ["first", "first answer", "second"]


async def test_config_coordinator_sets_model_temperature_tokens_and_prompt():
    class PerSession(ConfigCoordinator):
        async def load_config(self, session_id, config_override=None):
            config = {
                "model": "claude-sonnet-4-5",
                "temperature": 0.2,
                "max_tokens": 50,
                "system_prompt": f"You serve {session_id}.",
                "custom": 1,
            }
            config.update(config_override or {})
            return config

    provider = ScriptedProvider(["a", "b"])
    orch = AgentOrchestrator(
        settings=Settings(), provider=provider, model="gpt-4o", _config_coordinator=PerSession()
    )
    r = await orch.chat("hi", session_id="acme:42")
    call = provider.calls[0]
    assert call["model"] == "claude-sonnet-4-5" and r.model == "claude-sonnet-4-5"
    assert call["temperature"] == 0.2 and call["max_tokens"] == 50
    assert call["messages"][0].role == "system"
    assert call["messages"][0].content == "You serve acme:42."
    await orch.chat("again", session_id="acme:42", temperature=0.9, model="gpt-4o-mini")
    assert provider.calls[1]["temperature"] == 0.9
    assert provider.calls[1]["model"] == "gpt-4o-mini"
    await orch.aclose()


async def test_invalid_config_values_name_the_key():
    class Broken(ConfigCoordinator):
        async def load_config(self, session_id, config_override=None):
            return {"temperature": "hot"}

    orch = make(["x"], _config_coordinator=Broken())
    with pytest.raises(ConfigError, match="temperature"):
        await orch.chat("hi", session_id="c")
    await orch.aclose()


async def test_unknown_model_is_unpriced_not_free():
    async with AgentOrchestrator(
        settings=Settings(), provider=ScriptedProvider(["x"]), model="my-local-llama"
    ) as orch:
        response = await orch.chat("hi")
    assert response.cost is None


async def test_analytics_events_describe_the_turn():
    exporter = CollectingExporter()
    analytics = AnalyticsCoordinator(exporters=[exporter])
    script = [{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]}, "done"]
    orch = make(script, _analytics_coordinator=analytics)
    await orch.chat("weather?", session_id="acme:1")
    await orch.aclose()
    assert exporter.closed
    kinds = [e.type for e in exporter.events]
    assert kinds == [
        "llm_request",
        "tool_call",
        "llm_request",
        "session_start",  # once the first turn succeeded
        "token_usage",
        "chat_complete",
    ]
    assert len({e.event_id for e in exporter.events}) == len(kinds)
    assert all(e.tenant_id == "acme" and e.session_id == "acme:1" for e in exporter.events)
    usage = exporter.of_type("token_usage")[0].data
    assert usage["gen_ai.request.model"] == "gpt-4o"
    assert (
        usage["total_tokens"]
        == usage["gen_ai.usage.input_tokens"] + usage["gen_ai.usage.output_tokens"]
    )
    assert usage["cost_usd"] > 0 and usage["unpriced"] is False
    call = exporter.of_type("tool_call")[0].data
    assert call["tool"] == "get_weather" and call["is_error"] is False
    assert sorted(e.event_id for e in exporter.events) == [e.event_id for e in exporter.events]


async def test_errors_are_emitted_as_events():
    exporter = CollectingExporter()
    orch = make(
        [ProviderAuthError("denied")],
        _analytics_coordinator=AnalyticsCoordinator(exporters=[exporter]),
    )
    with pytest.raises(ProviderAuthError):
        await orch.chat("hi", session_id="err")
    await orch.aclose()
    error = exporter.of_type("error")[0]
    assert error.data["error_type"] == "ProviderAuthError" and "denied" in error.data["message"]


async def test_stream_yields_text_tool_events_and_a_final_response():
    script = [
        {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]},
        "It is sunny",
    ]
    async with make(script) as orch:
        chunks = [c async for c in orch.stream("weather?", session_id="st")]
        history = await orch.history("st")
    kinds = [c.type for c in chunks]
    assert kinds == ["tool_start", "tool_end", "text", "done"]
    assert chunks[1].tool_result.content == "sunny in Oslo"
    assert chunks[2].text == "It is sunny"
    assert chunks[-1].response.content == "It is sunny"
    assert len(history) == 4


async def test_chat_can_be_wrapped_by_middleware():
    from victor.agent.coordinators import MiddlewareCoordinator

    orch = make(["real answer"])
    calls = []

    async def log(orchestrator, func, *args, **kwargs):
        calls.append((orchestrator is orch, args, kwargs))

    async def block_secrets(orchestrator, func, message, *args, **kwargs):
        if "password" in message:
            return "blocked"
        return None

    middleware = MiddlewareCoordinator(orch)
    middleware.add_middleware(log)
    middleware.add_middleware(block_secrets)
    orch.chat = middleware.apply_middleware(orch.chat)
    assert await orch.chat("my password is x", session_id="mw") == "blocked"
    assert (await orch.chat("hello", session_id="mw")).content == "real answer"
    assert calls[0] == (True, ("my password is x",), {"session_id": "mw"})
    await orch.aclose()


async def test_compaction_keeps_the_conversation_within_the_window():
    settings = Settings(context_window=400, context_compaction_threshold=0.5)
    provider = ScriptedProvider(["x" * 200], cycle=True)
    store = InMemorySessionStore()
    orch = AgentOrchestrator(
        settings=settings, provider=provider, model="local-model", session_store=store
    )
    for i in range(10):
        await orch.chat(f"message {i} " + "y" * 100, session_id="long")
    last_sent = provider.calls[-1]["messages"]
    assert last_sent[-1].content.startswith("message 9")
    assert len(last_sent) < 20
    assert len(await store.load("long")) < 20


async def test_missing_provider_names_the_environment_variables():
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        AgentOrchestrator(settings=Settings())


async def test_register_tools_accepts_functions_and_rejects_duplicates():
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    orch = make(["x"], tools=[])
    orch.register_tools([add, get_weather])
    assert set(orch.tools) == {"add", "get_weather"}
    with pytest.raises(ValueError, match="already registered"):
        orch.register_tools([tool(add)])
    await orch.aclose()


async def test_only_the_offered_tools_can_run():
    from victor.agent.coordinators import ToolSelectionCoordinator
    from victor.protocols import IToolSelectionStrategy

    sent = []

    @tool(cost_tier="high")
    def wire_money(amount: int) -> str:
        """Send money."""
        sent.append(amount)
        return "sent"

    class FreeOnly(IToolSelectionStrategy):
        async def select_tools(self, query, available_tools, selection_coordinator):
            return [t for t in available_tools if t.cost_tier == "free"]

    script = [{"tool_calls": [{"name": "wire_money", "arguments": {"amount": 1000}}]}, "ok"]
    orch = make(
        script,
        tools=[get_weather, wire_money],
        _tool_selection_coordinator=ToolSelectionCoordinator(default_strategy=FreeOnly()),
    )
    response = await orch.chat("pay", session_id="policy")
    assert sent == []
    assert response.tool_results[0].is_error
    assert "unknown tool 'wire_money'" in response.tool_results[0].content
    assert "get_weather" in response.tool_results[0].content
    await orch.aclose()


async def test_max_tool_iterations_counts_rounds_and_lets_the_model_answer():
    script = [{"tool_calls": [{"name": "get_weather", "arguments": {"city": "a"}}]}, "answer"]
    orch = AgentOrchestrator(
        settings=Settings(max_tool_iterations=1),
        provider=ScriptedProvider(script),
        model="m",
        tools=[get_weather],
    )
    assert (await orch.chat("one round", session_id="r")).content == "answer"
    await orch.aclose()


async def test_misspelt_overrides_are_rejected_and_custom_keys_go_through_config():
    from victor.agent.coordinators import PromptCoordinator
    from victor.agent.coordinators.prompt_coordinator import BasePromptContributor

    class Tone(BasePromptContributor):
        async def get_contribution(self, context):
            return f"Tone: {context.get('tone')}"

    provider = ScriptedProvider(["x"])
    orch = AgentOrchestrator(
        settings=Settings(),
        provider=provider,
        model="m",
        _prompt_coordinator=PromptCoordinator(contributors=[Tone()]),
    )
    with pytest.raises(TypeError, match="did you mean 'temperature'"):
        await orch.chat("hi", temprature=0.1)
    with pytest.raises(TypeError, match="did you mean 'session_id'"):
        await orch.chat("hi", sesion_id="user-42")
    await orch.chat("hi", session_id="t", config={"tone": "formal"}, temperature=0.3)
    assert provider.calls[0]["messages"][0].content == "Tone: formal"
    assert provider.calls[0]["temperature"] == 0.3
    await orch.aclose()


async def test_strict_config_values():
    for bad, key in (
        ({"enable_analytics": "false"}, "enable_analytics"),
        ({"context_compaction_threshold": "high"}, "context_compaction_threshold"),
        ({"temperature": True}, "temperature"),
        ({"max_tool_iterations": 0}, "max_tool_iterations"),
    ):
        orch = make(["x"])
        with pytest.raises(ConfigError, match=key):
            await orch.chat("hi", session_id="c", config=bad)
        await orch.aclose()


async def test_a_failed_first_turn_is_no_session_start_and_still_reports_spend():
    exporter = CollectingExporter()
    call = {"tool_calls": [{"name": "get_weather", "arguments": {"city": "a"}}]}
    orch = AgentOrchestrator(
        settings=Settings(max_tool_iterations=1),
        provider=ScriptedProvider([call, call, "fine"]),
        model="gpt-4o",
        tools=[get_weather],
        _analytics_coordinator=AnalyticsCoordinator(exporters=[exporter]),
    )
    with pytest.raises(ToolLoopLimitError):
        await orch.chat("loop", session_id="fail-first")
    await orch.chat("again", session_id="fail-first")
    await orch.aclose()
    assert len(exporter.of_type("session_start")) == 1
    assert exporter.of_type("error")[0].data["error_type"] == "ToolLoopLimitError"
    usage = exporter.of_type("token_usage")
    assert len(usage) == 2 and usage[0].data["cost_usd"] > 0


async def test_config_failures_emit_an_error_event():
    class Down(ConfigCoordinator):
        async def load_config(self, session_id, config_override=None):
            raise ConnectionError("config database down")

    exporter = CollectingExporter()
    orch = make(
        ["x"],
        _config_coordinator=Down(),
        _analytics_coordinator=AnalyticsCoordinator(exporters=[exporter]),
    )
    with pytest.raises(ConnectionError):
        await orch.chat("hi", session_id="acme:s")
    await orch.aclose()
    (error,) = exporter.of_type("error")
    assert error.data["stage"] == "prepare" and error.tenant_id == "acme"


async def test_compaction_strategies_cannot_corrupt_history():
    from victor.agent.coordinators import ContextCoordinator
    from victor.agent.coordinators.context_coordinator import BaseCompactionStrategy
    from victor.protocols import Context, Message

    class Summarise(BaseCompactionStrategy):
        async def compact(self, context):
            keep = context.messages[-2:]
            summary = Message(role="system", content=f"summary of {len(context.messages)}")
            return Context(messages=[summary, *[m.model_copy() for m in keep]])

    class Mutates(BaseCompactionStrategy):
        async def compact(self, context):
            context.messages[0].content = "trimmed"  # frozen: raises
            return context

    class Broken(BaseCompactionStrategy):
        async def compact(self, context):
            return None

    settings = Settings(context_window=200, context_compaction_threshold=0.5)
    for strategy in (Summarise(), Mutates(), Broken()):
        provider = ScriptedProvider(["y" * 100], cycle=True)
        orch = AgentOrchestrator(
            settings=settings,
            provider=provider,
            model="local",
            session_store=InMemorySessionStore(),
            _context_coordinator=ContextCoordinator(strategy),
        )
        for i in range(6):
            await orch.chat(f"question {i} " + "z" * 50, session_id="c")
        sent = [m.content for m in provider.calls[-1]["messages"]]
        assert sent[-1].startswith("question 5")
        assert sum(c.startswith("question 5") for c in sent) == 1
        history = await orch.history("c")
        assert all(m.content != "trimmed" for m in history)
        await orch.aclose()


async def test_anthropic_key_alone_picks_a_claude_model(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    orch = AgentOrchestrator(settings=Settings())
    assert type(orch.provider).__name__ == "AnthropicProvider"
    assert orch.model.startswith("claude")
    await orch.aclose()


async def test_an_orchestrator_survives_several_event_loops():
    import threading

    @tool
    def slow_sync(n: int) -> str:
        """Sleeps in a thread."""
        import time

        time.sleep(0.01)
        return str(n)

    script = [{"tool_calls": [{"name": "slow_sync", "arguments": {"n": i}} for i in range(12)]}]
    orch = AgentOrchestrator(
        settings=Settings(max_parallel_tools=2),
        provider=ScriptedProvider([*script, "a", *script, "b"]),
        model="m",
        tools=[slow_sync],
        session_store=InMemorySessionStore(),
    )
    results = []

    def run():
        results.append(asyncio.run(orch.chat("go", session_id="x")).content)

    for _ in range(2):  # each in a fresh event loop, as with asyncio.run per request
        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
    assert results == ["a", "b"]


async def test_tool_selection_is_reported_for_ab_analysis():
    from victor.protocols import Tool

    catalogue = [Tool(name=f"tool_{i}", description=f"does thing number {i}") for i in range(24)]
    catalogue.append(Tool(name="get_invoice", description="Fetch an invoice by its number"))
    exporter = CollectingExporter()
    provider = ScriptedProvider(["done"])
    orch = AgentOrchestrator(
        settings=Settings(),
        provider=provider,
        model="m",
        tools=catalogue,
        _analytics_coordinator=AnalyticsCoordinator(exporters=[exporter]),
    )
    await orch.chat(
        "fetch invoice 42",
        session_id="sel",
        tool_selection={"strategy": "keyword", "max_tools": 3},
    )
    await orch.aclose()
    assert provider.calls[0]["tools"][0] == "get_invoice"
    assert len(provider.calls[0]["tools"]) == 3
    (event,) = exporter.of_type("tool_selection")
    data = event.data
    assert data["strategy"] == "keyword" and data["used"] == "keyword"
    assert data["max_tools"] == 3 and data["candidates"] == 25
    assert data["chosen"][0] == "get_invoice"


async def test_events_of_a_turn_share_a_turn_id():
    exporter = CollectingExporter()
    script = [{"tool_calls": [{"name": "get_weather", "arguments": {"city": "a"}}]}, "x", "y"]
    orch = make(script, _analytics_coordinator=AnalyticsCoordinator(exporters=[exporter]))
    await orch.chat("one", session_id="t")
    await orch.chat("two", session_id="t")
    await orch.aclose()
    turns = [e.data["turn_id"] for e in exporter.events]
    assert len(set(turns)) == 2
    assert turns == sorted(turns)
    usage = exporter.of_type("token_usage")[0].data
    assert usage["gen_ai.provider.name"] == "scripted"


async def test_middleware_also_guards_streams():
    from victor.agent.coordinators import MiddlewareCoordinator
    from victor.protocols import StreamChunk

    orch = make(["streamed answer"])

    async def deny_anonymous(orchestrator, func, message, session_id=None, **kwargs):
        if session_id is None:
            return StreamChunk(type="text", text="please sign in")
        return None

    middleware = MiddlewareCoordinator(orch)
    middleware.add_middleware(deny_anonymous)
    orch.stream = middleware.apply_middleware(orch.stream)
    denied = [c async for c in orch.stream("hi")]
    assert [c.text for c in denied] == ["please sign in"]
    allowed = [c async for c in orch.stream("hi", session_id="known")]
    assert allowed[-1].response.content == "streamed answer"
    await orch.aclose()
