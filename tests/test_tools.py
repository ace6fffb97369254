from typing import Literal

import pytest
from pydantic import BaseModel

from victor import tool
from victor.errors import ToolDefinitionError
from victor.protocols import Tool, ToolCall
from victor.tools import ToolExecutor


@tool
def get_weather(city: str, unit: Literal["C", "F"] = "C", days: int = 1) -> str:
    """Current weather in a city.

    Args:
        city: The city name.
        unit: Temperature unit.
    """
    return f"{city} {unit} {days}"


@tool(name="lookup", cost_tier="high", domain="web", tags=["search"], timeout=0.2)
async def slow_lookup(query: str) -> dict:
    """Look something up."""
    return {"query": query}


def test_schema_comes_from_type_hints_and_docstring():
    assert isinstance(get_weather, Tool)
    assert get_weather.name == "get_weather"
    assert get_weather.description == "Current weather in a city."
    params = get_weather.parameters
    assert params["type"] == "object"
    assert params["required"] == ["city"]
    assert params["properties"]["city"] == {"type": "string", "description": "The city name."}
    assert params["properties"]["unit"]["enum"] == ["C", "F"]
    assert params["properties"]["days"]["type"] == "integer"
    assert "title" not in params["properties"]["city"]


def test_options_and_plain_string_cost_tier():
    assert slow_lookup.name == "lookup"
    assert slow_lookup.cost_tier == "high"
    assert type(slow_lookup.cost_tier) is str
    assert slow_lookup.cost_tier in ["medium", "high"]
    assert slow_lookup.domain == "web" and slow_lookup.tags == ["search"]
    assert slow_lookup.is_async and not get_weather.is_async


def test_decorated_function_is_still_callable():
    assert get_weather("Oslo") == "Oslo C 1"


def test_unsupported_signatures_are_rejected_clearly():
    def takes_kwargs(**options: int) -> None: ...

    with pytest.raises(ToolDefinitionError, match="declare each argument"):
        tool(takes_kwargs)


def test_cost_tier_is_validated():
    with pytest.raises(ValueError):
        Tool(name="x", cost_tier="expensive")


async def test_executor_coerces_validates_and_reports():
    executor = ToolExecutor()
    tools = {"get_weather": get_weather}
    ok = await executor.run_one(
        ToolCall(id="1", name="get_weather", arguments={"city": "Rome", "days": "3"}), tools
    )
    assert not ok.is_error and ok.content == "Rome C 3"
    bad = await executor.run_one(
        ToolCall(id="2", name="get_weather", arguments={"unit": "K"}), tools
    )
    assert bad.is_error
    assert "city" in bad.content and "unit" in bad.content
    extra = await executor.run_one(
        ToolCall(id="3", name="get_weather", arguments={"city": "a", "bogus": 1}), tools
    )
    assert extra.is_error and "bogus" in extra.content


async def test_raw_schema_tools_are_validated_with_json_schema():
    def add(a, b):
        return a + b

    raw = Tool(
        name="add",
        parameters={
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
        fn=add,
    )
    executor = ToolExecutor()
    good = await executor.run_one(
        ToolCall(id="1", name="add", arguments={"a": 1, "b": 2}), {"add": raw}
    )
    assert good.content == "3"
    bad = await executor.run_one(
        ToolCall(id="2", name="add", arguments={"a": "x", "b": 2}), {"add": raw}
    )
    assert bad.is_error and "a" in bad.content


async def test_results_are_serialised_and_truncated():
    class Point(BaseModel):
        x: int

    @tool
    def point() -> Point:
        """A point."""
        return Point(x=1)

    @tool
    def big() -> str:
        """Large output."""
        return "y" * 1000

    executor = ToolExecutor(max_result_chars=100)
    tools = {"point": point, "big": big}
    results = await executor.run(
        [ToolCall(id="1", name="point"), ToolCall(id="2", name="big")], tools
    )
    assert results[0].content == '{"x":1}'
    assert results[1].content.startswith("y" * 100) and "900 more characters" in results[1].content


async def test_timeouts_and_exceptions_become_error_results():
    import asyncio

    @tool(timeout=0.05)
    async def hang() -> str:
        """Never returns in time."""
        await asyncio.sleep(5)
        return "late"

    @tool
    def boom() -> str:
        """Raises."""
        raise RuntimeError("disk on fire")

    executor = ToolExecutor()
    tools = {"hang": hang, "boom": boom}
    r1, r2 = await executor.run(
        [ToolCall(id="1", name="hang"), ToolCall(id="2", name="boom")], tools
    )
    assert r1.is_error and "timed out" in r1.content
    assert r2.is_error and "RuntimeError: disk on fire" in r2.content


async def test_parameters_may_share_names_with_pydantic_attributes():
    @tool
    def run_sql(schema: str, json: bool = False, model_config: str = "default") -> str:
        """Run SQL in a schema."""
        return f"{schema}/{json}/{model_config}"

    assert set(run_sql.parameters["properties"]) == {"schema", "json", "model_config"}
    result = await ToolExecutor().run_one(
        ToolCall(id="1", name="run_sql", arguments={"schema": "public", "model_config": "x"}),
        {"run_sql": run_sql},
    )
    assert result.content == "public/False/x"


def test_methods_become_tools_when_bound():
    class Account:
        balance = 10

        def get_balance(self, currency: str) -> str:
            """The balance."""
            return f"{self.balance} {currency}"

    bound = tool(Account().get_balance)
    assert list(bound.parameters["properties"]) == ["currency"]
    assert bound("EUR") == "10 EUR"
    with pytest.raises(ToolDefinitionError, match="bound method"):
        tool(Account.get_balance)


async def test_a_tools_own_timeout_error_is_not_reported_as_ours():
    @tool
    async def fetch() -> str:
        """Fetches."""
        raise TimeoutError("upstream read timed out")

    result = await ToolExecutor(timeout=10).run_one(
        ToolCall(id="1", name="fetch"), {"fetch": fetch}
    )
    assert result.is_error and "upstream read timed out" in result.content
    assert "after 10 s" not in result.content
