"""Recipe 8 (custom tool selection strategy) run as published against the package.

The recipe's classes are copied literally (step 1); its ``main.py`` (step 2) runs inside
the tests, with ``provider``, ``model`` and ``Settings`` supplied as the recipe assumes.
"""

# --- recipe code, as published (step 1) ---------------------------------------------------
# tool_selection.py
from typing import List
from victor.protocols import IToolSelectionStrategy, Tool
from victor.agent.coordinators.tool_selection_coordinator import IToolSelectionCoordinator

class CostAwareToolSelectionStrategy(IToolSelectionStrategy):
    """Select tools based on cost constraints."""

    def __init__(self, max_cost_per_call: float = 0.01):
        self.max_cost_per_call = max_cost_per_call

    async def select_tools(
        self,
        query: str,
        available_tools: List[Tool],
        selection_coordinator: IToolSelectionCoordinator
    ) -> List[Tool]:
        """Select tools within cost budget."""
        # Filter tools by cost
        affordable_tools = [
            tool for tool in available_tools
            if tool.cost_tier in ["free", "low"]
        ]

        # Use semantic selection on affordable tools
        return await selection_coordinator._semantic_selection(
            query,
            affordable_tools
        )

class DomainSpecificToolSelectionStrategy(IToolSelectionStrategy):
    """Select tools based on domain classification."""

    def __init__(self, domain_classifier):
        self.domain_classifier = domain_classifier

        self.domain_tool_mapping = {
            "coding": ["read", "write", "search", "bash"],
            "data_analysis": ["pandas_query", "visualization", "statistics"],
            "web": ["web_search", "web_scrape", "browse"],
        }

    async def select_tools(
        self,
        query: str,
        available_tools: List[Tool],
        selection_coordinator: IToolSelectionCoordinator
    ) -> List[Tool]:
        """Select tools based on domain."""
        # Classify query domain
        domain = await self.domain_classifier.classify(query)

        # Get allowed tools for domain
        allowed_tool_names = self.domain_tool_mapping.get(domain, [])

        # Filter available tools
        domain_tools = [
            tool for tool in available_tools
            if tool.name in allowed_tool_names
        ]

        return domain_tools

# --- end of recipe code ------------------------------------------------------------------

from victor.agent.coordinators import ToolSelectionCoordinator
from victor.agent.orchestrator import AgentOrchestrator
from victor.config.settings import Settings
from victor.protocols import Tool
from victor.providers import ScriptedProvider
from victor.selection.strategies import EmbeddingDomainClassifier


def _tool(name, description, cost_tier="free"):
    return Tool(name=name, description=description, cost_tier=cost_tier)


CATALOGUE = [
    _tool("read", "Read a file from the workspace and return its text."),
    _tool("write", "Write text to a file in the workspace."),
    _tool("search", "Search the code base for a regular expression."),
    _tool("bash", "Run a shell command and return its output.", "low"),
    _tool("pandas_query", "Query a table of data with pandas and return the rows.", "low"),
    _tool("visualization", "Draw a chart (bar, line, scatter) from a table of data."),
    _tool("statistics", "Compute summary statistics: mean, median, standard deviation."),
    _tool("web_search", "Search the web and return the top result pages.", "medium"),
    _tool("web_scrape", "Download a web page and extract its text.", "low"),
    _tool("browse", "Open a URL in a headless browser and click through it.", "high"),
    _tool("translate", "Translate text between languages with a paid API.", "high"),
]


async def test_recipe_8_cost_aware_strategy_offers_only_affordable_relevant_tools():
    provider = ScriptedProvider(["Done."], cycle=True)
    model = "claude-sonnet-4-5"

    # main.py
    from victor.agent.coordinators import ToolSelectionCoordinator
    from victor.agent.orchestrator import AgentOrchestrator

    # Create custom strategy
    strategy = CostAwareToolSelectionStrategy(max_cost_per_call=0.01)

    # Create tool selection coordinator
    tool_selection_coordinator = ToolSelectionCoordinator(
        default_strategy=strategy
    )

    # Create orchestrator
    orchestrator = AgentOrchestrator(
        settings=Settings(),
        provider=provider,
        model=model,
        _tool_selection_coordinator=tool_selection_coordinator
    )

    orchestrator.register_tools(CATALOGUE)
    response = await orchestrator.chat(
        "compute the mean and standard deviation of this column", session_id="r8-cost"
    )
    assert response.content == "Done."
    offered = provider.calls[0]["tools"]
    tiers = {t.name: t.cost_tier for t in CATALOGUE}
    assert offered and all(tiers[name] in ("free", "low") for name in offered)
    assert "browse" not in offered and "translate" not in offered
    assert offered[0] == "statistics"  # semantic ranking of the affordable tools

    # The coordinator itself reports what the strategy did.
    selection = await tool_selection_coordinator.select_for_turn(
        "run the unit tests in a shell", CATALOGUE
    )
    assert selection.strategy == "CostAwareToolSelectionStrategy"
    assert not selection.fallback and selection.tools[0].name == "bash"
    await orchestrator.aclose()


async def test_recipe_8_domain_strategy_with_embedding_classifier():
    classifier = EmbeddingDomainClassifier(
        {
            "coding": ["fix this bug in my Python code", "refactor the function", "run the tests"],
            "data_analysis": ["plot the sales by month", "average of this column", "a pivot table"],
            "web": ["look this up online", "what does this web page say", "open the website"],
        }
    )
    strategy = DomainSpecificToolSelectionStrategy(classifier)
    provider = ScriptedProvider(["Done."], cycle=True)
    tool_selection_coordinator = ToolSelectionCoordinator(default_strategy=strategy)
    orchestrator = AgentOrchestrator(
        settings=Settings(),
        provider=provider,
        model="claude-sonnet-4-5",
        tools=CATALOGUE,
        _tool_selection_coordinator=tool_selection_coordinator,
    )
    await orchestrator.chat("chart the monthly revenue from this spreadsheet", session_id="r8-d")
    assert set(provider.calls[0]["tools"]) == {"pandas_query", "visualization", "statistics"}
    await orchestrator.chat("what does the python.org home page say today?", session_id="r8-w")
    assert set(provider.calls[1]["tools"]) == {"web_search", "web_scrape", "browse"}
    assert await classifier.classify("refactor this class and run the tests") == "coding"

    # A domain with no tool: the strategy returns nothing and the coordinator falls back.
    strategy.domain_tool_mapping["web"] = []
    selection = await tool_selection_coordinator.select_for_turn(
        "what does the python.org home page say today?", CATALOGUE
    )
    assert selection.fallback and selection.error == "strategy returned no tools"
    assert selection.tools and selection.details["used"] == "hybrid"
    await orchestrator.aclose()
