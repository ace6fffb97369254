"""Built-in strategies: cost-aware, domain-based (embedding classifier), wrappers."""

from __future__ import annotations

from victor.agent.coordinators.tool_selection_coordinator import ToolSelectionCoordinator
from victor.protocols import IToolSelectionStrategy, Tool
from victor.selection.strategies import (
    CostAwareStrategy,
    DomainStrategy,
    EmbeddingDomainClassifier,
    HybridStrategy,
    KeywordStrategy,
    SemanticStrategy,
)

TOOLS = [
    Tool(
        name="web_search", description="Search the web for pages.", cost_tier="free", domain="web"
    ),
    Tool(
        name="premium_search",
        description="Search the web with a paid index.",
        cost_tier="high",
        domain="web",
    ),
    Tool(
        name="scrape_page", description="Download a web page's text.", cost_tier="low", domain="web"
    ),
    Tool(name="read_file", description="Read a file from the repository.", domain="coding"),
    Tool(
        name="run_tests",
        description="Run the project's unit tests.",
        cost_tier="medium",
        domain="coding",
    ),
    Tool(name="plot_chart", description="Plot a chart from a table.", domain="data"),
    Tool(
        name="summary_stats",
        description="Mean, median and spread of a column.",
        cost_tier="low",
        domain="data",
    ),
]


def names(tools):
    return [t.name for t in tools]


async def test_builtin_strategy_objects() -> None:
    coordinator = ToolSelectionCoordinator(max_tools=2)
    for strategy in (KeywordStrategy(), SemanticStrategy(), HybridStrategy(k=1)):
        chosen = await strategy.select_tools("search the web", TOOLS, coordinator)
        assert chosen[0].name == "web_search"
    assert len(await HybridStrategy(k=1).select_tools("search", TOOLS, coordinator)) == 1


async def test_cost_aware_excludes_expensive_tiers() -> None:
    coordinator = ToolSelectionCoordinator(max_tools=3)
    strategy = CostAwareStrategy(max_cost_per_call=0.001)
    chosen = await strategy.select_tools("search the web", TOOLS, coordinator)
    assert chosen[0].name == "web_search"
    assert not {"premium_search", "run_tests"} & set(names(chosen))
    everything = CostAwareStrategy(max_cost_per_call=None, k=10)
    assert "premium_search" in names(await everything.select_tools("search", TOOLS, coordinator))


async def test_cost_aware_budget_caps_the_offered_set() -> None:
    coordinator = ToolSelectionCoordinator(max_tools=10)
    strategy = CostAwareStrategy(max_cost_per_call=None, budget=0.1025, inner="keyword")
    chosen = await strategy.select_tools("search the web with a paid index", TOOLS, coordinator)
    costs = [strategy.cost(t) for t in chosen]
    assert chosen[0].name == "premium_search" and sum(costs) <= 0.1025
    assert "run_tests" not in names(chosen)  # 0.01 more would pass the budget
    assert len(chosen) == 6
    unknown = CostAwareStrategy(tier_costs={"free": 0.0})
    assert unknown.cost(TOOLS[2]) == 0.0  # unknown tiers count as the dearest known


class Raising(IToolSelectionStrategy):
    async def select_tools(self, query, available_tools, selection_coordinator):
        raise RuntimeError("ranker down")


async def test_cost_aware_fallback_never_offers_an_expensive_tier() -> None:
    coordinator = ToolSelectionCoordinator(
        max_tools=3,
        strategies={
            "none": CostAwareStrategy(max_cost_per_call=-1.0),
            "cheap": CostAwareStrategy(max_cost_per_call=0.001, inner=Raising()),
        },
    )
    # Nothing affordable: the fallback must not offer the catalogue instead.
    selection = await coordinator.select_for_turn(
        "search the web with a paid index", TOOLS, config={"tool_selection": {"strategy": "none"}}
    )
    assert selection.fallback and selection.tools == [] and selection.used == "none"
    assert "allows no tool" in selection.error
    # The strategy fails: the built-in ranks the affordable tools only (pinned ones too).
    config = {"tool_selection": {"strategy": "cheap", "pinned": ["premium_search"]}}
    selection = await coordinator.select_for_turn(
        "search the web with a paid index", TOOLS, config=config
    )
    assert selection.fallback and selection.error == "RuntimeError: ranker down"
    assert selection.tools[0].name == "web_search" and len(selection.tools) == 3
    assert not {"premium_search", "run_tests"} & set(names(selection.tools))


async def test_hard_filter_applies_to_the_strategy_answer_and_fails_closed() -> None:
    class Sloppy(IToolSelectionStrategy):
        """Returns every tool but declares that only free ones may be offered."""

        def allowed(self, tool: Tool) -> bool:
            return tool.cost_tier == "free"

        async def select_tools(self, query, available_tools, selection_coordinator):
            return list(available_tools)

    coordinator = ToolSelectionCoordinator(default_strategy=Sloppy(), max_tools=10)
    selection = await coordinator.select_for_turn("search", TOOLS)
    assert names(selection.tools) == ["web_search", "read_file", "plot_chart"]
    assert selection.used == "custom" and not selection.fallback

    class BrokenFilter(Sloppy):
        def allowed(self, tool: Tool) -> bool:
            raise KeyError(tool.name)

    coordinator = ToolSelectionCoordinator(default_strategy=BrokenFilter(), max_tools=10)
    selection = await coordinator.select_for_turn("search", TOOLS)
    assert selection.tools == [] and selection.fallback and "allowed()" in selection.error


async def test_embedding_domain_classifier() -> None:
    classifier = EmbeddingDomainClassifier(
        {
            "coding": ["fix the failing unit test", "refactor this Python function"],
            "travel": ["book a flight to Rome", "find a hotel near the station"],
        },
    )
    assert await classifier.classify("the unit tests fail after my refactor") == "coding"
    assert await classifier.classify("I need a flight and a hotel in Oslo in May") == "travel"
    assert await classifier.classify("banana bread recipe") == "general"
    scores = await classifier.scores("book a flight to Rome")
    assert scores["travel"] > 0.99 > scores["coding"]
    assert await classifier.classify("I need a flight and a hotel in Oslo in May") == "travel"


async def test_domain_strategy_filters_then_ranks() -> None:
    coordinator = ToolSelectionCoordinator(max_tools=5)
    classifier = EmbeddingDomainClassifier.from_tools(TOOLS, threshold=0.2)
    assert set(classifier.examples) == {"web", "coding", "data"}
    strategy = DomainStrategy(classifier, domain_tools={"data": ["read_file"]})
    chosen = await strategy.select_tools("average value of the price column", TOOLS, coordinator)
    assert set(names(chosen)) == {"plot_chart", "summary_stats", "read_file"}
    assert chosen[0].name == "summary_stats"

    class Fixed:
        async def classify(self, query: str) -> str:
            return "nothing-here"

    ranked = await DomainStrategy(Fixed()).select_tools("run the tests", TOOLS, coordinator)
    assert ranked[0].name == "run_tests" and len(ranked) == 5  # no domain tool: rank all
