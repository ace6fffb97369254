"""Per-turn overhead of the agent loop, with a model that answers instantly.

Victor runs with default ``Settings()`` (SQLite history in a temporary data directory) and a
zero-latency ``ScriptedProvider``; every turn is a fresh session. Two shapes of turn: a text
answer, and one tool call followed by an answer. When Pydantic AI is installed it runs the
same turns side by side (``FunctionModel``, a fresh ``agent.run`` each turn) and the ratio
is printed.

    python benchmarks/turn_overhead.py [--turns 2000] [--json out.json]

Two rhythms. *Saturated*: turns back to back (each followed by one pass of the event loop,
timed with it), so the background work a turn causes (the analytics pipeline's tasks and
thread, SQLite's writer) competes with the next turn for the two cores and the GIL: the
CPU a turn costs. *Paced* (``--gap``, default 1 ms between turns): the
room a real model's network wait gives that work.

Import time and peak memory are measured in fresh subprocesses.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable

TurnFn = Callable[[int], Awaitable[object]]


def summarise(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "mean_us": statistics.fmean(ordered) * 1e6,
        "p50_us": pick(0.50) * 1e6,
        "p99_us": pick(0.99) * 1e6,
    }


async def measure(
    turn: TurnFn, turns: int, warmup: int = 200, gap: float = 0.0
) -> dict[str, float]:
    """Each sample is one turn plus one pass of the event loop (``sleep(0)``): a turn with
    an instant model never suspends, and a loop that never runs its other tasks would
    leave the work a turn hands to them (analytics batches) out of the measure, piling
    up. A server's loop takes that pass between requests anyway. Paced runs then sleep
    ``gap`` seconds, untimed."""
    for i in range(warmup):
        await turn(-1 - i)
        await asyncio.sleep(0)
    gc.collect()
    samples = []
    clock = time.perf_counter
    for i in range(turns):
        start = clock()
        await turn(i)
        await asyncio.sleep(0)
        samples.append(clock() - start)
        if gap:
            await asyncio.sleep(gap)
    return summarise(samples)


async def victor_turns(
    turns: int,
    *,
    analytics: str = "default",
    explicit_ids: bool = False,
    history: int = 0,
    gap: float = 0.0,
):
    from victor import AgentOrchestrator, Settings, tool
    from victor.agent.coordinators import AnalyticsCoordinator
    from victor.protocols import ExportResult, IAnalyticsExporter
    from victor.providers import ScriptedProvider

    @tool
    async def get_weather(city: str) -> str:
        """Weather in a city.

        Args:
            city: The city.
        """
        return f"sunny in {city}"

    class NullExporter(IAnalyticsExporter):
        async def export(self, events):
            return ExportResult(success=True, exported_count=len(events))

    class DeadExporter(IAnalyticsExporter):
        outbox = True  # a remote destination that is down, like PostgreSQL

        async def export(self, events):
            raise ConnectionError("exporter down")

    def coordinator():
        if analytics == "null":
            return AnalyticsCoordinator(exporters=[NullExporter()])
        if analytics == "down":
            return AnalyticsCoordinator(exporters=[DeadExporter()])
        if analytics == "off":
            return AnalyticsCoordinator()
        return None  # the shipped default: events into <data_dir>/analytics.db

    results = {}
    with tempfile.TemporaryDirectory() as data_dir:
        os.environ["VICTOR_DATA_DIR"] = data_dir
        text = AgentOrchestrator(
            settings=Settings(),
            provider=ScriptedProvider(["Hello!"], cycle=True),
            model="gpt-4o",
            _analytics_coordinator=coordinator(),
        )
        call = {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}
        with_tool = AgentOrchestrator(
            settings=Settings(),
            provider=ScriptedProvider([call, "It is sunny."], cycle=True),
            model="gpt-4o",
            tools=[get_weather],
            _analytics_coordinator=coordinator(),
        )

        def session(i: int) -> str | None:
            if history:  # round robin over sessions that already hold `history` messages
                return f"long-{i % 100}"
            return f"bench-{i}" if explicit_ids else None

        if history:
            for orch, prefix in ((text, "long-"), (with_tool, "long-")):
                for s in range(100):
                    for _ in range(history // 4):
                        await orch.chat("Weather in Paris?", session_id=f"{prefix}{s}")
        results["text"] = await measure(
            lambda i: text.chat("Hi!", session_id=session(i)), turns, gap=gap
        )
        results["tool"] = await measure(
            lambda i: with_tool.chat("Weather in Paris?", session_id=session(i)), turns, gap=gap
        )
        await text.aclose()
        await with_tool.aclose()
    return results


async def pydantic_ai_turns(turns: int):
    try:
        from pydantic_ai import Agent
        from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart, ToolReturnPart
        from pydantic_ai.models.function import FunctionModel
    except ImportError:
        return None

    def text_model(messages, info):
        return ModelResponse(parts=[TextPart("Hello!")])

    def tool_model(messages, info):
        last = messages[-1].parts[-1]
        if isinstance(last, ToolReturnPart):
            return ModelResponse(parts=[TextPart("It is sunny.")])
        return ModelResponse(parts=[ToolCallPart("get_weather", {"city": "Paris"})])

    text_agent = Agent(FunctionModel(text_model))
    tool_agent = Agent(FunctionModel(tool_model))

    @tool_agent.tool_plain
    async def get_weather(city: str) -> str:
        """Weather in a city."""
        return f"sunny in {city}"

    return {
        "text": await measure(lambda i: text_agent.run("Hi!"), turns),
        "tool": await measure(lambda i: tool_agent.run("Weather in Paris?"), turns),
    }


def import_time() -> float:
    code = (
        "import time; t = time.perf_counter(); "
        "from victor import AgentOrchestrator, Settings, tool; "
        "print(time.perf_counter() - t)"
    )
    runs = [float(subprocess.check_output([sys.executable, "-c", code])) for _ in range(5)]
    return min(runs)


def peak_memory_mb(turns: int) -> float:
    code = f"""
import asyncio, resource, sys
sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
from turn_overhead import victor_turns
asyncio.run(victor_turns({turns}))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""
    return float(subprocess.check_output([sys.executable, "-c", code]).split()[-1])


def main() -> None:
    import logging

    logging.disable(logging.CRITICAL)  # the "exporter down" run logs every failed batch
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=2000)
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument(
        "--gap", type=float, default=0.001, help="seconds between turns in the paced runs"
    )
    args = parser.parse_args()

    report: dict[str, object] = {
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        ),
        "date": time.strftime("%Y-%m-%d"),
        "turns": args.turns,
    }
    report["victor"] = asyncio.run(victor_turns(args.turns))
    report["victor_explicit_new_ids"] = asyncio.run(victor_turns(args.turns, explicit_ids=True))
    report["victor_history_100"] = asyncio.run(victor_turns(args.turns, history=100))
    report["victor_analytics_off"] = asyncio.run(victor_turns(args.turns, analytics="off"))
    report["victor_null_exporter"] = asyncio.run(victor_turns(args.turns, analytics="null"))
    report["victor_exporter_down"] = asyncio.run(victor_turns(args.turns, analytics="down"))
    paced = {"turns": args.turns, "gap": args.gap}
    for kind in ("off", "default", "null", "down"):
        paced[kind] = asyncio.run(victor_turns(args.turns, analytics=kind, gap=args.gap))
    report["paced"] = paced
    peer = asyncio.run(pydantic_ai_turns(args.turns))
    report["pydantic_ai"] = peer
    report["import_s"] = import_time()
    report["peak_rss_mb"] = peak_memory_mb(args.turns)

    print(f"{report['machine']}, {report['date']}, {args.turns} turns each")
    head = f"{'text mean':>10} {'p50':>8} {'p99':>8} {'tool mean':>10} {'p50':>8} {'p99':>8}"
    print(f"{'run (microseconds)':34} {head}")
    for name in (
        "victor",
        "victor_explicit_new_ids",
        "victor_history_100",
        "victor_analytics_off",
        "victor_null_exporter",
        "victor_exporter_down",
        "pydantic_ai",
    ):
        row = report[name]
        if not row:
            continue
        t, u = row["text"], row["tool"]
        print(
            f"{name:34} {t['mean_us']:10.0f} {t['p50_us']:8.0f} {t['p99_us']:8.0f} "
            f"{u['mean_us']:10.0f} {u['p50_us']:8.0f} {u['p99_us']:8.0f}"
        )
    if peer:
        v = report["victor"]
        text_ratio = peer["text"]["mean_us"] / v["text"]["mean_us"]
        tool_ratio = peer["tool"]["mean_us"] / v["tool"]["mean_us"]
        print(f"Pydantic AI / Victor (mean): text {text_ratio:.1f}x, tool {tool_ratio:.1f}x")
    print(f"paced ({args.gap * 1000:g} ms between turns), analytics:")
    for kind in ("off", "default", "null", "down"):
        t, u = paced[kind]["text"], paced[kind]["tool"]
        print(
            f"{kind:34} {t['mean_us']:10.0f} {t['p50_us']:8.0f} {t['p99_us']:8.0f} "
            f"{u['mean_us']:10.0f} {u['p50_us']:8.0f} {u['p99_us']:8.0f}"
        )
    print(
        f"import victor: {report['import_s'] * 1000:.0f} ms; peak RSS of a run: "
        f"{report['peak_rss_mb']:.0f} MB"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)


if __name__ == "__main__":
    main()
