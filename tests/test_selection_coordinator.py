"""ToolSelectionCoordinator: built-in rankings, per-session config, fallbacks, pinning."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from victor.agent.coordinators.tool_selection_coordinator import (
    IToolSelectionCoordinator,
    ToolSelection,
    ToolSelectionCoordinator,
)
from victor.protocols import IEmbeddingService, IToolSelectionStrategy, Message, Tool

CATALOGUE = [
    Tool(name="read_file", description="Read the contents of a file from disk."),
    Tool(name="writeFile", description="Write text to a file on disk."),
    Tool(name="getWeatherForecast", description="Temperature and rain forecast for a city."),
    Tool(name="web_search", description="Search the internet and return result pages."),
    Tool(name="send_email", description="Send an email message to a recipient."),
    Tool(name="calculator", description="Evaluate an arithmetic expression."),
    Tool(name="create_calendar_event", description="Schedule a meeting in the calendar."),
    Tool(name="translate_text", description="Translate text into another language."),
    Tool(name="git_commit", description="Record staged changes in the git repository."),
    Tool(name="sql_query", description="Run a SQL query against the database."),
]
NAMES = [t.name for t in CATALOGUE]


def names(tools: list[Tool]) -> list[str]:
    return [t.name for t in tools]


@pytest.fixture
def coordinator() -> ToolSelectionCoordinator:
    return ToolSelectionCoordinator(max_tools=3)


@pytest.mark.parametrize("strategy", ["keyword", "semantic", "hybrid"])
@pytest.mark.parametrize(
    ("query", "best"),
    [
        ("Will it rain in Paris tomorrow? What's the weather forecast?", "getWeatherForecast"),
        ("email my manager the quarterly report", "send_email"),
        ("translate this paragraph into German", "translate_text"),
        ("commit my staged changes to git", "git_commit"),
    ],
)
async def test_each_builtin_ranks_the_obvious_tool_first(
    coordinator: ToolSelectionCoordinator, strategy: str, query: str, best: str
) -> None:
    chosen = await coordinator.select_tools(query, CATALOGUE, strategy=strategy)
    assert len(chosen) == 3 and chosen[0].name == best


async def test_semantic_finds_tools_without_shared_words(
    coordinator: ToolSelectionCoordinator,
) -> None:
    chosen = await coordinator._semantic_selection("set up a call with Bob on Friday", CATALOGUE)
    assert chosen[0].name == "create_calendar_event"
    assert (await coordinator._keyword_selection("set up a call with Bob", CATALOGUE, k=10)) != []
    assert await coordinator._hybrid_selection("anything", [], k=5) == []


async def test_k_and_all(coordinator: ToolSelectionCoordinator) -> None:
    assert len(await coordinator._hybrid_selection("file", CATALOGUE, k=5)) == 5
    assert names(await coordinator.select_tools("file", CATALOGUE, strategy="all")) == NAMES
    assert await coordinator.select_tools("file", CATALOGUE, k=0) == []


async def test_few_tools_are_all_offered_on_the_cheap_path() -> None:
    coordinator = ToolSelectionCoordinator(max_tools=20)
    selection = await coordinator.select_for_turn("hi", CATALOGUE, config={})
    assert isinstance(selection, ToolSelection)
    assert selection.strategy == "all" and names(selection.tools) == NAMES
    assert selection.candidates == len(CATALOGUE) and not selection.fallback
    start = time.perf_counter()
    for _ in range(1000):
        await coordinator.select_for_turn("hi", CATALOGUE, config={"model": "x"})
    assert (time.perf_counter() - start) / 1000 < 50e-6  # a few microseconds, with slack


async def test_per_session_config_switches_strategy_and_limits() -> None:
    coordinator = ToolSelectionCoordinator(max_tools=20)
    query = "read the file config.yaml"
    for strategy in ("keyword", "semantic", "hybrid"):
        config = {"tool_selection": {"strategy": strategy, "max_tools": 2, "hybrid_alpha": 0.5}}
        selection = await coordinator.select_for_turn(query, CATALOGUE, config=config)
        assert selection.strategy == strategy and selection.details["used"] == strategy
        assert len(selection.tools) == 2 and selection.tools[0].name == "read_file"
        assert selection.latency_ms > 0 and not selection.fallback
    assert selection.details["hybrid_alpha"] == 0.5
    selection = await coordinator.select_for_turn(
        query, CATALOGUE, config={"tool_selection": {"strategy": "all"}}
    )
    assert names(selection.tools) == NAMES


async def test_pinned_tools_are_always_offered() -> None:
    coordinator = ToolSelectionCoordinator(max_tools=3)
    config = {"tool_selection": {"strategy": "keyword", "pinned": ["calculator", "missing"]}}
    selection = await coordinator.select_for_turn("send an email", CATALOGUE, config=config)
    assert names(selection.tools)[0] == "calculator" and "send_email" in names(selection.tools)
    assert len(selection.tools) == 3 and selection.details["pinned"] == ["calculator", "missing"]


class Raising(IToolSelectionStrategy):
    async def select_tools(self, query, available_tools, selection_coordinator):
        raise RuntimeError("classifier down")


class Empty(IToolSelectionStrategy):
    async def select_tools(self, query, available_tools, selection_coordinator):
        return []


class OnlyFirst(IToolSelectionStrategy):
    async def select_tools(self, query, available_tools, selection_coordinator):
        assert isinstance(selection_coordinator, IToolSelectionCoordinator)
        # Recursion guard: the default inside a custom strategy is the built-in one.
        ranked = await selection_coordinator.select_tools(query, available_tools, k=2)
        return [available_tools[0], *ranked]


@pytest.mark.parametrize(
    ("strategy", "error"),
    [(Raising(), "RuntimeError: classifier down"), (Empty(), "strategy returned no tools")],
)
async def test_failing_custom_strategy_falls_back_to_the_builtin(
    strategy: IToolSelectionStrategy, error: str, caplog: pytest.LogCaptureFixture
) -> None:
    coordinator = ToolSelectionCoordinator(default_strategy=strategy, max_tools=2)
    with caplog.at_level(logging.WARNING):
        selection = await coordinator.select_for_turn("send an email", CATALOGUE)
    assert selection.fallback and selection.error == error
    assert selection.strategy == type(strategy).__name__
    assert selection.details["used"] == "hybrid" and selection.tools[0].name == "send_email"
    assert any("falls back" in r.message or "using hybrid" in r.message for r in caplog.records)
    # The public ranking API falls back the same way.
    assert names(await coordinator.select_tools("send an email", CATALOGUE))[0] == "send_email"


async def test_custom_strategy_runs_even_with_few_tools_and_is_capped() -> None:
    coordinator = ToolSelectionCoordinator(default_strategy=OnlyFirst(), max_tools=2)
    selection = await coordinator.select_for_turn("git commit", CATALOGUE)
    assert names(selection.tools) == ["read_file", "git_commit"] and not selection.fallback


async def test_registered_strategies_are_chosen_by_name(caplog) -> None:
    coordinator = ToolSelectionCoordinator(max_tools=2, strategies={"first": OnlyFirst()})
    coordinator.register_strategy("broken", Raising())
    with pytest.raises(ValueError):
        coordinator.register_strategy("hybrid", Empty())
    first = await coordinator.select_for_turn(
        "git commit", CATALOGUE, config={"tool_selection": {"strategy": "first"}}
    )
    assert first.strategy == "first" and names(first.tools)[0] == "read_file"
    broken = await coordinator.select_for_turn(
        "git commit", CATALOGUE, config={"tool_selection": {"strategy": "broken"}}
    )
    assert broken.fallback and names(broken.tools)[0] == "git_commit"
    with caplog.at_level(logging.WARNING):
        unknown = await coordinator.select_for_turn(
            "git commit", CATALOGUE, config={"tool_selection": {"strategy": "nope"}}
        )
    assert names(unknown.tools)[0] == "git_commit" and "unknown tool selection" in caplog.text


class BrokenEmbeddings(IEmbeddingService):
    model_name = "broken"
    dimension = 384

    async def embed_batch(self, texts):
        raise ConnectionError("embedding API unreachable")


async def test_hybrid_degrades_to_keyword_when_embeddings_fail() -> None:
    coordinator = ToolSelectionCoordinator(
        embeddings=BrokenEmbeddings(), max_tools=2, cache_dir=False
    )
    selection = await coordinator.select_for_turn(
        "send an email", CATALOGUE, config={"tool_selection": {"strategy": "hybrid"}}
    )
    assert names(selection.tools)[0] == "send_email"
    assert selection.fallback and "embedding API unreachable" in selection.error
    # What analytics needs to tell a degraded turn apart, with stable names.
    assert selection.strategy == "hybrid" and selection.used == "keyword"
    assert selection.details["used"] == "keyword"
    assert selection.max_tools == 2 and selection.hybrid_alpha == coordinator.hybrid_alpha
    data = selection.event_data()
    assert data["used"] == "keyword" and data["error"] == selection.error
    assert {"strategy", "used", "max_tools", "hybrid_alpha", "error", "fallback"} <= set(data)
    semantic = await coordinator.select_for_turn(
        "send an email", CATALOGUE, config={"tool_selection": {"strategy": "semantic"}}
    )
    assert semantic.fallback and semantic.details["used"] == "keyword"
    assert semantic.used == "keyword"


class CountingEmbeddings(IEmbeddingService):
    model_name = "counting"
    dimension = 384

    def __init__(self) -> None:
        self.calls = 0

    async def embed_batch(self, texts):
        self.calls += 1
        raise AssertionError("no embedding expected")


async def test_configured_builtin_with_few_tools_offers_them_all_without_ranking() -> None:
    service = CountingEmbeddings()
    coordinator = ToolSelectionCoordinator(embeddings=service, max_tools=20, cache_dir=False)
    config = {
        "tool_selection": {"strategy": "hybrid", "hybrid_alpha": 0.3, "pinned": ["sql_query"]}
    }
    selection = await coordinator.select_for_turn("send an email", CATALOGUE, config=config)
    assert service.calls == 0 and not coordinator._indexes.builds  # nothing loaded or built
    assert names(selection.tools) == ["sql_query", *(n for n in NAMES if n != "sql_query")]
    assert selection.strategy == "hybrid" and selection.used == "all"
    assert selection.max_tools == 20 and selection.hybrid_alpha == 0.3
    assert not selection.fallback and selection.error is None
    # More tools than max_tools: ranked as configured.
    config["tool_selection"]["max_tools"] = 3
    ranked = await coordinator.select_for_turn("send an email", CATALOGUE, config=config)
    assert ranked.used == "keyword" and service.calls == 1  # the counting model refuses
    assert names(ranked.tools)[:2] == ["sql_query", "send_email"] and len(ranked.tools) == 3


async def test_aclose_releases_the_embedding_cache_and_is_idempotent(tmp_path) -> None:
    class Closable(IEmbeddingService):
        model_name = "closable"
        dimension = 384
        closed = 0

        async def embed_batch(self, texts):
            from victor.selection.embeddings import default_embeddings

            return await default_embeddings().embed_batch(texts)

        async def aclose(self) -> None:
            self.closed += 1

    service = Closable()
    coordinator = ToolSelectionCoordinator(embeddings=service, cache_dir=tmp_path, max_tools=1)
    await coordinator._semantic_selection("send an email", CATALOGUE)
    disk = coordinator._embedder.disk
    assert disk is not None and disk._conn is not None
    await coordinator.aclose()
    await coordinator.aclose()
    assert disk._conn is None and coordinator._embedder is None and service.closed == 1
    # A later turn reopens what it needs.
    assert names(await coordinator._semantic_selection("mail", CATALOGUE)) == ["send_email"]
    await coordinator.aclose()


async def test_short_follow_up_is_ranked_with_the_previous_user_turn() -> None:
    coordinator = ToolSelectionCoordinator(max_tools=1)
    history = [
        Message(role="user", content="What's the weather forecast for Paris?"),
        Message(role="assistant", content="Sunny, 21 C."),
        Message(role="user", content="and Berlin?"),
    ]
    config = {"tool_selection": {"strategy": "keyword"}}
    selection = await coordinator.select_for_turn(
        "and Berlin?", CATALOGUE, config=config, history=history
    )
    assert names(selection.tools) == ["getWeatherForecast"]
    assert selection.details["context_turns"] == 1
    alone = await coordinator.select_for_turn("and Berlin?", CATALOGUE, config=config)
    assert "context_turns" not in alone.details


async def test_concurrent_sessions_keep_their_own_settings() -> None:
    coordinator = ToolSelectionCoordinator(max_tools=20)

    async def turn(k: int):
        config = {"tool_selection": {"strategy": "keyword", "max_tools": k}}
        return await coordinator.select_for_turn("file", CATALOGUE, config=config)

    results = await asyncio.gather(*(turn(k) for k in (1, 2, 3, 4) * 5))
    assert [len(r.tools) for r in results] == [1, 2, 3, 4] * 5


async def test_index_is_reused_across_turns_and_equal_catalogues() -> None:
    coordinator = ToolSelectionCoordinator(max_tools=2)
    await coordinator.select_tools("file", CATALOGUE, strategy="keyword")
    await coordinator.select_tools("mail", list(CATALOGUE), strategy="keyword")
    await coordinator.select_tools("mail", [Tool(**t.model_dump()) for t in CATALOGUE])
    assert coordinator._indexes.builds == 1
    await coordinator.select_tools("mail", CATALOGUE[:5], strategy="keyword")
    assert coordinator._indexes.builds == 2


async def test_keyword_selection_is_fast_on_a_large_catalogue() -> None:
    from victor.selection.datasets import synthetic_catalogue

    tools, queries = synthetic_catalogue(10_000, queries=50)
    coordinator = ToolSelectionCoordinator(max_tools=20)
    await coordinator.warm_up(tools, semantic=False)
    times = []
    for query in queries:
        start = time.perf_counter()
        await coordinator._keyword_selection(query, tools)
        times.append(time.perf_counter() - start)
    times.sort()
    assert times[len(times) // 2] < 5e-3  # measured ~0.3 ms; generous for busy CI machines


async def test_malformed_config_values_fall_back_to_defaults(caplog) -> None:
    coordinator = ToolSelectionCoordinator(max_tools=2)
    config = {"tool_selection": {"strategy": "keyword", "max_tools": "many", "hybrid_alpha": []}}
    with caplog.at_level(logging.WARNING):
        selection = await coordinator.select_for_turn("send an email", CATALOGUE, config=config)
    assert len(selection.tools) == 2 and "is not an integer" in caplog.text
    default = await coordinator.select_for_turn(
        "hi", CATALOGUE[:2], config={"tool_selection": {"strategy": "default"}}
    )
    assert default.strategy == "all"
