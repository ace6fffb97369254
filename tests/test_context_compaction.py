"""Context compaction: token counts, the built-in strategies, and the orchestrator's use of
them (threshold, provider-reported counts, the summary's cost, failures)."""

from __future__ import annotations

import logging

import pytest

from helpers import CollectingExporter, HashingEmbeddings
from victor.agent.coordinators import AnalyticsCoordinator, ContextCoordinator
from victor.agent.coordinators.context_coordinator import BaseCompactionStrategy
from victor.agent.orchestrator import AgentOrchestrator
from victor.config.settings import Settings
from victor.context import (
    SUMMARY_MARKER,
    KeepRecentCompactionStrategy,
    SemanticCompactionStrategy,
    SummarizationCompactionStrategy,
)
from victor.errors import ConfigError, ProviderServerError
from victor.pricing import default_price_table
from victor.protocols import Context, Message, ToolCall, Usage
from victor.protocols.tokens import estimate_message_tokens
from victor.providers import FunctionProvider, ScriptedProvider
from victor.sessions import InMemorySessionStore


def user(text: str) -> Message:
    return Message(role="user", content=text)


def assistant(text: str) -> Message:
    return Message(role="assistant", content=text)


def test_a_tool_calls_arguments_count_by_their_size():
    call = ToolCall(id="c1", name="write_file", arguments={"path": "a.py", "text": "x" * 40_000})
    tokens = estimate_message_tokens([Message(role="assistant", tool_calls=[call])])
    assert 10_000 <= tokens <= 10_100  # it was 15: 4 per argument key
    raw = ToolCall(id="c2", name="f", raw_arguments="{not json" + "y" * 4_000)
    assert estimate_message_tokens([Message(role="assistant", tool_calls=[raw])]) > 1_000


async def test_a_large_tool_argument_makes_the_history_compact():
    call = ToolCall(id="c1", name="write_file", arguments={"text": "x" * 40_000})
    history = [
        user("write the file"),
        Message(role="assistant", tool_calls=[call]),
        Message(role="tool", content="ok", tool_call_id="c1", name="write_file"),
        assistant("done"),
    ]
    compaction = await ContextCoordinator().maybe_compact(
        history, [user("next")], context_window=12_000, threshold=0.8
    )
    assert compaction is not None
    assert [m.content for m in compaction.messages] == ["write the file", "done"]


async def test_keep_recent_keeps_older_messages_sharing_the_querys_keywords():
    history = [
        user("what is the invoice number for ACME?"),
        assistant("The ACME invoice number is INV-7781."),
        user("tell me a joke " + "filler " * 50),
        assistant("A joke " + "filler " * 50),
        user("and the weather in Paris?"),
        assistant("Sunny in Paris."),
    ]
    context = Context(messages=history, max_tokens=60, metadata={"query": "Send the invoice"})
    result = await KeepRecentCompactionStrategy(recent_turns=1).compact(context)
    assert [m.content for m in result.messages] == [
        "what is the invoice number for ACME?",
        "The ACME invoice number is INV-7781.",
        "and the weather in Paris?",
        "Sunny in Paris.",
    ]


async def test_semantic_with_the_shipped_model_keeps_what_the_query_is_about():
    history = [
        user("My database password rotation runs every Sunday night."),
        assistant("Noted: the credential rotation job runs on Sundays."),
        user("Recommend a pasta recipe with tomatoes."),
        assistant("Try spaghetti al pomodoro with basil."),
        user("Which football team won the league?"),
        assistant("I do not have live sports results."),
        user("thanks"),
        assistant("You're welcome."),
    ]
    strategy = SemanticCompactionStrategy(recent_turns=1, diversity=0.0)
    budget = estimate_message_tokens(history[-2:]) + estimate_message_tokens(history[:1]) + 2
    context = Context(
        messages=history,
        max_tokens=budget,
        metadata={"query": "when do the DB credentials rotate?"},
    )
    result = await strategy.compact(context)
    assert [m.content for m in result.messages] == [history[0].content, "thanks", "You're welcome."]


async def test_semantic_picks_diverse_messages_over_repeats():
    history = [
        user("deploy the cache service"),
        user("deploy the cache service"),
        user("deploy the index service"),
        user("latest"),
    ]
    room = estimate_message_tokens(history[:1]) * 2 + estimate_message_tokens(history[3:])
    context = Context(messages=history, max_tokens=room, metadata={"query": "deploy service"})
    strategy = SemanticCompactionStrategy(HashingEmbeddings(), recent_turns=1, diversity=0.6)
    result = await strategy.compact(context)
    assert [m.content for m in result.messages] == [
        "deploy the cache service",
        "deploy the index service",
        "latest",
    ]


def summarising_provider(summary: str, answer: str = "answer") -> FunctionProvider:
    def respond(messages, tools):
        if messages[0].role == "system" and "compress conversations" in messages[0].content:
            return {
                "content": summary,
                "usage": {"input_tokens": 900, "output_tokens": 50, "requests": 1},
            }
        return answer + " " + "w" * 300

    return FunctionProvider(respond)


async def test_a_summary_replaces_older_turns_and_counts_in_usage_cost_and_analytics():
    exporter = CollectingExporter()
    provider = summarising_provider("The user asked about invoices; INV-7781 was found.")
    strategy = SummarizationCompactionStrategy(model="gpt-4.1-nano", recent_turns=1)
    orch = AgentOrchestrator(
        # gpt-4o-mini has a 128k window: 0.005 of it is 640 tokens.
        settings=Settings(context_compaction_threshold=0.005),
        provider=provider,
        model="gpt-4o-mini",
        session_store=InMemorySessionStore(),
        _context_coordinator=ContextCoordinator(strategy),
        _analytics_coordinator=AnalyticsCoordinator(exporters=[exporter]),
    )
    responses = [await orch.chat(f"question {i} " + "q" * 200, session_id="s") for i in range(6)]
    history = await orch.history("s")
    await orch.aclose()

    summaries = [m for m in history if m.metadata.get(SUMMARY_MARKER)]
    assert len(summaries) == 1 and "INV-7781" in summaries[0].content
    assert history[-2].content.startswith("question 5")
    compacted = [r for r in responses if r.usage.requests == 2]  # the answer + the summary
    assert compacted
    summary_usage = Usage(input_tokens=900, output_tokens=50, requests=1)
    prices = default_price_table()
    first = compacted[0]
    answer_usage = Usage(
        input_tokens=first.usage.input_tokens - 900,
        output_tokens=first.usage.output_tokens - 50,
        requests=1,
    )
    expected = prices.cost("gpt-4o-mini", answer_usage) + prices.cost("gpt-4.1-nano", summary_usage)
    assert first.cost == pytest.approx(expected)
    requests = [e for e in exporter.of_type("llm_request") if e.data.get("purpose")]
    assert requests and requests[0].data["gen_ai.request.model"] == "gpt-4.1-nano"
    assert requests[0].data["gen_ai.usage.input_tokens"] == 900
    totals = [e.data["gen_ai.usage.input_tokens"] for e in exporter.of_type("token_usage")]
    assert first.usage.input_tokens in totals


async def test_the_providers_count_is_the_truth_for_the_threshold():
    # The estimate sees a short conversation; the provider reports 9,000 input tokens
    # (a large system prompt, tool schemas, a tokenizer denser than four characters).
    provider = ScriptedProvider(
        [{"content": "ok", "usage": {"input_tokens": 9_000, "output_tokens": 1}}], cycle=True
    )
    orch = AgentOrchestrator(
        settings=Settings(context_window=10_000, context_compaction_threshold=0.8),
        provider=provider,
        model="local",
        session_store=InMemorySessionStore(),
    )
    await orch.chat("first", session_id="t")
    await orch.chat("second", session_id="t")
    await orch.chat("third", session_id="t")
    await orch.aclose()
    sent = [m.content for m in provider.calls[-1]["messages"]]
    assert "first" not in sent and sent[-1] == "third"


async def test_a_strategy_that_raises_is_logged_and_replaced_by_truncation(caplog):
    class Exploding(BaseCompactionStrategy):
        async def compact(self, context):
            raise RuntimeError("embedding service down")

    coordinator = ContextCoordinator(Exploding())
    history = [user("a" * 400), assistant("b" * 400), user("c" * 40), assistant("d")]
    with caplog.at_level(logging.ERROR):
        compaction = await coordinator.maybe_compact(
            history, [user("next")], context_window=200, threshold=0.8
        )
    assert compaction is not None and compaction.strategy == "truncation"
    assert [m.content for m in compaction.messages] == ["c" * 40, "d"]
    assert "embedding service down" in caplog.text


async def test_a_failing_summary_call_leaves_the_turn_working_on_truncation():
    calls = []

    def respond(messages, tools):
        if "compress conversations" in messages[0].content:
            calls.append("summary")
            raise ProviderServerError("summariser overloaded", status_code=503)
        return "answer " + "w" * 300

    orch = AgentOrchestrator(
        settings=Settings(context_window=600, context_compaction_threshold=0.8),
        provider=FunctionProvider(respond),
        model="local",
        session_store=InMemorySessionStore(),
        _context_coordinator=ContextCoordinator(SummarizationCompactionStrategy()),
    )
    responses = [await orch.chat(f"q{i} " + "z" * 200, session_id="f") for i in range(6)]
    await orch.aclose()
    assert calls and all(r.usage.requests == 1 for r in responses)


async def test_a_session_picks_a_builtin_strategy_by_name_and_a_wrong_name_is_refused():
    history = [user("invoice INV-1 " + "x" * 300), assistant("y" * 300), user("hi"), assistant("o")]
    coordinator = ContextCoordinator()
    compaction = await coordinator.maybe_compact(
        history,
        [user("the invoice please")],
        context_window=200,
        threshold=0.8,
        strategy="keep_recent",
        query="the invoice please",
    )
    assert compaction is not None and compaction.strategy == "keep_recent"
    with pytest.raises(
        ConfigError, match=r"unknown context_compaction_strategy 'smart'.*keep_recent"
    ):
        await coordinator.maybe_compact(
            history, [], context_window=300, threshold=0.8, strategy="smart"
        )


async def test_summarization_without_a_provider_says_what_it_needs():
    history = [user("a" * 400), assistant("b" * 400), user("c"), assistant("d")]
    context = Context(messages=history, max_tokens=100)
    with pytest.raises(ConfigError, match="needs a provider and a model"):
        await SummarizationCompactionStrategy().compact(context)


def test_strategies_refuse_nonsense_parameters():
    with pytest.raises(ValueError, match="recent_turns"):
        KeepRecentCompactionStrategy(recent_turns=-1)
    with pytest.raises(ValueError, match="diversity"):
        SemanticCompactionStrategy(diversity=2.0)
    with pytest.raises(ValueError, match="max_summary_tokens"):
        SummarizationCompactionStrategy(max_summary_tokens=1)
