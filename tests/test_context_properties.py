"""The invariants every compaction strategy keeps, checked on generated conversations."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import HashingEmbeddings
from victor.context import (
    SUMMARY_MARKER,
    KeepRecentCompactionStrategy,
    SemanticCompactionStrategy,
    SummarizationCompactionStrategy,
    TruncationCompactionStrategy,
    message_groups,
)
from victor.protocols import Context, Message, ToolCall
from victor.protocols.tokens import estimate_message_tokens
from victor.providers import ScriptedProvider

WORDS = [
    *("deploy", "invoice", "python", "weather", "paris", "database"),
    *("index", "cache", "latency", "error", "retry"),
]
text = st.lists(st.sampled_from(WORDS), max_size=40).map(" ".join)


@st.composite
def conversations(draw) -> tuple[list[Message], int, str]:
    messages: list[Message] = []
    if draw(st.booleans()):
        messages.append(Message(role="system", content=draw(text)))
    for turn in range(draw(st.integers(0, 8))):
        messages.append(Message(role="user", content=draw(text)))
        for step in range(draw(st.integers(0, 2))):
            calls = [
                ToolCall(id=f"c{turn}.{step}.{k}", name="search", arguments={"q": draw(text)})
                for k in range(draw(st.integers(1, 3)))
            ]
            messages.append(Message(role="assistant", content=draw(text), tool_calls=calls))
            messages.extend(
                Message(role="tool", content=draw(text), tool_call_id=c.id, name=c.name)
                for c in calls
            )
        if draw(st.booleans()):
            messages.append(Message(role="assistant", content=draw(text)))
        if draw(st.integers(0, 9)) == 0:  # a system message in the middle
            messages.append(Message(role="system", content=draw(text)))
    return messages, draw(st.integers(0, 600)), draw(text)


def required_tokens(messages: list[Message]) -> int:
    """What every strategy must keep: system messages and the latest user message."""
    groups = message_groups(messages)
    kept = [g for g in groups if g[0].role == "system"]
    users = [g for g in groups if g[0].role == "user"]
    if users:
        kept.append(users[-1])
    return sum(estimate_message_tokens(g) for g in kept)


def check_invariants(original: list[Message], result: list[Message], budget: int) -> None:
    kept = [m for m in result if not m.metadata.get(SUMMARY_MARKER)]
    # Order preserved: the kept messages are a subsequence of the original (same objects).
    position = 0
    for m in kept:
        while position < len(original) and original[position] is not m:
            position += 1
        assert position < len(original), "a message is new or out of order"
        position += 1
    ids = {id(m) for m in kept}
    assert all(id(m) in ids for m in original if m.role == "system"), "a system message was lost"
    users = [m for m in original if m.role == "user"]
    if users:
        assert id(users[-1]) in ids, "the latest user message was lost"
    for group in message_groups(original):  # a tool call and its results: all or none
        present = {id(m) in ids for m in group}
        assert len(present) == 1, "a tool call was separated from its results"
    assert estimate_message_tokens(result) <= max(budget, required_tokens(original))
    assert sum(1 for m in result if m.metadata.get(SUMMARY_MARKER)) <= 1


def compact(strategy, messages: list[Message], budget: int, query: str) -> list[Message]:
    context = Context(messages=messages, max_tokens=budget, model="m", metadata={"query": query})
    result = asyncio.run(strategy.compact(context))
    assert isinstance(result, Context)
    return result.messages


STRATEGIES = {
    "truncation": TruncationCompactionStrategy,
    "keep_recent": lambda: KeepRecentCompactionStrategy(recent_turns=2),
    "summarization": lambda: SummarizationCompactionStrategy(
        ScriptedProvider(["deploy " * 400, "short summary", ""], cycle=True),
        "cheap-model",
        max_summary_tokens=64,
    ),
    "semantic": lambda: SemanticCompactionStrategy(HashingEmbeddings(), diversity=0.5),
}


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_keeps_the_invariants(name):
    strategy = STRATEGIES[name]()

    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(conversations())
    def check(case):
        messages, budget, query = case
        check_invariants(messages, compact(strategy, messages, budget, query), budget)

    check()


@pytest.mark.parametrize("name", ["summarization", "truncation"])
def test_a_conversation_within_budget_is_kept_whole(name):
    # Keep-recent and semantic choose by relevance on purpose: they may drop unrelated
    # older messages even when there is room.
    strategy = STRATEGIES[name]()

    @settings(max_examples=30, deadline=None)
    @given(conversations())
    def check(case):
        messages, _, query = case
        # Strategies count group by group (each rounded up): the budget is that sum.
        budget = sum(estimate_message_tokens(g) for g in message_groups(messages))
        assert compact(strategy, messages, budget, query) == messages

    check()
