import asyncio
import contextlib
import gc
import sys
import threading
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Literal

import pytest
from pydantic import BaseModel

from victor import AgentOrchestrator, Settings, tool
from victor.errors import ToolDefinitionError
from victor.protocols import Tool, ToolCall
from victor.providers import FunctionProvider, ScriptedProvider
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


# -- misbehaving tools ----------------------------------------------------------------
# Whatever a tool does becomes an error result the model reads; only a real cancellation
# of the turn ends it.


def _exits() -> str:
    """Calls sys.exit()."""
    sys.exit(3)


async def _exits_async() -> str:
    """Calls sys.exit() from a coroutine."""
    sys.exit(3)


def _interrupts() -> str:
    """Raises KeyboardInterrupt."""
    raise KeyboardInterrupt


async def _interrupts_async() -> str:
    """Raises KeyboardInterrupt from a coroutine."""
    raise KeyboardInterrupt


async def _cancels_itself() -> str:
    """Raises CancelledError without anyone cancelling it."""
    raise asyncio.CancelledError()


def _cancels_itself_sync() -> str:
    """Raises asyncio's CancelledError in its thread."""
    raise asyncio.CancelledError()


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def _unprintable_result() -> object:
    """Returns an object that cannot be shown."""
    return _Unprintable()


class _UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no message")


def _raises_unprintable() -> str:
    """Raises an exception whose message cannot be read."""
    raise _UnprintableError()


def _generator() -> Iterator[int]:
    """A generator function."""
    yield 1


def _returns_generator() -> object:
    """Returns a generator."""
    return (n for n in range(3))


async def _async_generator() -> AsyncIterator[int]:
    """An async generator function."""
    yield 1


def _returns_coroutine() -> object:
    """Returns a coroutine it never awaits."""
    return asyncio.sleep(0, "never awaited")


MISBEHAVING = [
    (_exits, "SystemExit: 3"),
    (_exits_async, "SystemExit: 3"),
    (_interrupts, "KeyboardInterrupt"),
    (_interrupts_async, "KeyboardInterrupt"),
    (_cancels_itself, "CancelledError"),
    (_cancels_itself_sync, "CancelledError"),
    (_unprintable_result, "cannot be turned into text: RuntimeError: no str"),
    (_raises_unprintable, "_UnprintableError"),
    (_generator, "returned a generator"),
    (_returns_generator, "returned a generator"),
    (_async_generator, "returned a generator"),
    (_returns_coroutine, "returned a coroutine"),
]


@pytest.mark.parametrize(("fn", "expected"), MISBEHAVING, ids=[f.__name__ for f, _ in MISBEHAVING])
async def test_whatever_a_tool_does_becomes_an_error_result_the_model_reads(fn, expected):
    provider = ScriptedProvider([{"tool_calls": [{"name": "bad", "arguments": {}}]}, "noted"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # "coroutine ... never awaited"
        async with AgentOrchestrator(
            settings=Settings(), provider=provider, model="gpt-4o", tools=[tool(fn, name="bad")]
        ) as orch:
            response = await orch.chat("go", session_id="s")
            assert response.content == "noted"
            (result,) = response.tool_results
            assert result.is_error and result.content.startswith("tool 'bad' ")
            assert expected in result.content
            (seen,) = [m for m in provider.calls[1]["messages"] if m.role == "tool"]
            assert seen.is_error and seen.content == result.content
            assert [m.role for m in await orch.history("s")][-2:] == ["tool", "assistant"]
            gc.collect()  # an unawaited coroutine warns when collected


async def _history_then_cancel_during_tool(fn, started) -> None:
    call = {"tool_calls": [{"name": "wait", "arguments": {}}]}
    provider = ScriptedProvider(["first answer", call, "unreachable"])
    async with AgentOrchestrator(
        settings=Settings(), provider=provider, model="gpt-4o", tools=[tool(fn, name="wait")]
    ) as orch:
        await orch.chat("hello", session_id="c")
        before = await orch.history("c")
        turn = asyncio.create_task(orch.chat("use the tool", session_id="c"))
        await _until(started.is_set)
        turn.cancel()
        with pytest.raises(asyncio.CancelledError):
            await turn
        assert await orch.history("c") == before
        return orch.executor


async def test_cancelling_a_turn_cancels_its_async_tool_and_keeps_history():
    started, release = threading.Event(), asyncio.Event()
    cancelled = []

    async def wait() -> str:
        """Waits to be released."""
        started.set()
        try:
            await release.wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return "released"

    await _history_then_cancel_during_tool(wait, started)
    assert cancelled == [True]


async def test_a_turn_is_cancelled_even_when_its_tool_swallows_the_cancellation():
    started = threading.Event()

    async def wait() -> str:
        """Ignores being cancelled."""
        started.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(10)
        return "finished anyway"

    await _history_then_cancel_during_tool(wait, started)


async def test_cancelling_a_turn_while_its_sync_tool_runs_writes_the_thread_off():
    started, release = threading.Event(), threading.Event()

    def wait() -> str:
        """Blocks its thread until released."""
        started.set()
        release.wait(10)
        return "released"

    executor = await _history_then_cancel_during_tool(wait, started)
    assert executor.stuck_threads == 1
    release.set()
    await _until(lambda: executor.stuck_threads == 0)


async def _until(condition, seconds: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_stuck_sync_tools_do_not_starve_another_sessions_tools():
    release = threading.Event()

    @tool(timeout=0.05)
    def hang() -> str:
        """Blocks its thread far past its timeout."""
        release.wait(10)
        return "late"

    @tool(timeout=2)
    def instant() -> str:
        """Answers at once."""
        return "instant answer"

    def model(messages, tools):
        if messages[-1].role == "tool":
            return f"saw: {messages[-1].content}"
        name = "instant" if messages[-1].content == "quick" else "hang"
        return {"tool_calls": [{"name": name, "arguments": {}}]}

    orch = AgentOrchestrator(
        settings=Settings(), provider=FunctionProvider(model), model="gpt-4o", tools=[hang, instant]
    )
    try:
        stuck = await asyncio.gather(*(orch.chat("slow", session_id=f"s{i}") for i in range(20)))
        assert all(r.tool_results[0].is_error for r in stuck)
        assert "timed out after 0.05 s" in stuck[0].tool_results[0].content
        assert orch.executor.stuck_threads == 20
        quick = await orch.chat("quick", session_id="other")
        assert quick.content == "saw: instant answer"
        assert not quick.tool_results[0].is_error
    finally:
        release.set()
        await orch.aclose()
    await _until(lambda: orch.executor.stuck_threads == 0)


async def test_stuck_threads_are_bounded_past_which_sync_calls_are_refused():
    release = threading.Event()

    @tool(timeout=0.05)
    def hang() -> str:
        """Blocks its thread far past its timeout."""
        release.wait(10)
        return "late"

    @tool
    def instant() -> str:
        """Answers at once."""
        return "instant answer"

    @tool
    async def instant_async() -> str:
        """Answers at once."""
        return "async answer"

    tools = {"hang": hang, "instant": instant, "instant_async": instant_async}
    executor = ToolExecutor(max_stuck_threads=2)
    try:
        for i in range(2):
            result = await executor.run_one(ToolCall(id=str(i), name="hang"), tools)
            assert result.is_error and "timed out" in result.content
        assert executor.stuck_threads == 2
        refused = await executor.run_one(ToolCall(id="3", name="instant"), tools)
        assert refused.is_error
        assert "not started" in refused.content and "2 sync tool threads" in refused.content
        still = await executor.run_one(ToolCall(id="4", name="instant_async"), tools)
        assert still.content == "async answer"
    finally:
        release.set()
    await _until(lambda: executor.stuck_threads == 0)
    again = await executor.run_one(ToolCall(id="5", name="instant"), tools)
    assert again.content == "instant answer"
    executor.close()


async def test_a_tool_that_swallows_cancellation_is_reported_as_timed_out():
    @tool(timeout=0.05)
    async def stubborn() -> str:
        """Ignores being cancelled."""
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(10)
        await asyncio.sleep(0.05)
        return "finished anyway"

    provider = ScriptedProvider([{"tool_calls": [{"name": "stubborn", "arguments": {}}]}, "ok"])
    async with AgentOrchestrator(
        settings=Settings(), provider=provider, model="gpt-4o", tools=[stubborn]
    ) as orch:
        response = await orch.chat("go", session_id="s")
    (result,) = response.tool_results
    assert result.is_error and result.content == "tool 'stubborn' timed out after 0.05 s"


async def test_sync_tools_run_in_parallel_and_threads_are_reused():
    barrier = threading.Barrier(3, timeout=5)

    @tool
    def meet(n: int) -> str:
        """Waits for the two others."""
        barrier.wait()
        return threading.current_thread().name

    executor = ToolExecutor()
    calls = [ToolCall(id=str(n), name="meet", arguments={"n": n}) for n in range(3)]
    first = await executor.run(calls, {"meet": meet})
    assert not any(r.is_error for r in first)
    second = await executor.run(calls, {"meet": meet})
    assert {r.content for r in second} == {r.content for r in first}
    executor.close()
    barrier.reset()
    after_close = await executor.run(calls, {"meet": meet})
    assert not any(r.is_error for r in after_close)


async def test_a_slow_sync_tool_never_holds_the_event_loop():
    release = threading.Event()

    @tool
    def wait_for_the_loop() -> str:
        """Returns once the event loop has run a task meanwhile."""
        return "released" if release.wait(5) else "the loop was held"

    async def set_from_the_loop() -> None:
        await asyncio.sleep(0.01)
        release.set()

    executor = ToolExecutor()
    for n in range(2):
        release.clear()
        helper = asyncio.create_task(set_from_the_loop())
        result = await executor.run_one(ToolCall(id=str(n), name="w"), {"w": wait_for_the_loop})
        assert result.content == "released"
        await helper
    executor.close()
