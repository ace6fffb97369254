"""What a sync tool costs over the same tool written async: the hand-off to its thread.

Three measures, each async and sync side by side, in alternating blocks so that drift in
the machine's load hits both alike:

- *turn*: a one-tool chat turn through ``AgentOrchestrator`` with default ``Settings()``
  (SQLite history in a temporary data directory, analytics into SQLite) and a zero-latency
  ``ScriptedProvider``, a fresh session each turn, each sample one turn plus one pass of
  the event loop (as in ``turn_overhead.py``). The history and analytics writers' threads
  wait for the GIL: a turn that lets go of it (as the hand-off to a thread does) runs their
  work inside its own time, work an async-tool turn leaves to later;
- *bare turn*: the same turn with the history in memory and analytics off, so no other
  thread competes: the hand-off alone;
- *call*: ``ToolExecutor.run_one`` alone, the tool call without the rest of the turn.

    python benchmarks/sync_tool_handoff.py [--turns 2000] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable

Step = Callable[[], Awaitable[object]]


def summarise(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "mean_us": statistics.fmean(ordered) * 1e6,
        "p50_us": pick(0.50) * 1e6,
        "p99_us": pick(0.99) * 1e6,
    }


async def side_by_side(
    steps: dict[str, Step], samples: int, block: int = 100, warmup: int = 200
) -> dict[str, dict[str, float]]:
    """Time each step ``samples`` times (plus a loop pass each), in alternating blocks."""
    clock = time.perf_counter
    for step in steps.values():
        for _ in range(warmup):
            await step()
            await asyncio.sleep(0)
    gc.collect()
    timings: dict[str, list[float]] = {name: [] for name in steps}
    while len(timings[next(iter(steps))]) < samples:
        for name, step in steps.items():
            for _ in range(block):
                start = clock()
                await step()
                await asyncio.sleep(0)
                timings[name].append(clock() - start)
    return {name: summarise(values) for name, values in timings.items()}


async def run(samples: int) -> dict[str, dict[str, dict[str, float]]]:
    from victor import AgentOrchestrator, Settings, tool
    from victor.agent.coordinators import AnalyticsCoordinator
    from victor.protocols import ToolCall
    from victor.providers import ScriptedProvider
    from victor.sessions import InMemorySessionStore
    from victor.tools import ToolExecutor

    @tool(name="get_weather")
    async def weather_async(city: str) -> str:
        """Weather in a city."""
        return f"sunny in {city}"

    @tool(name="get_weather")
    def weather_sync(city: str) -> str:
        """Weather in a city."""
        return f"sunny in {city}"

    call = {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}
    tools = (("async", weather_async), ("sync", weather_sync))
    results = {}
    for measure, bare in (("turn", False), ("bare turn", True)):
        with tempfile.TemporaryDirectory() as data_dir:
            os.environ["VICTOR_DATA_DIR"] = data_dir
            options = {}
            if bare:
                options = {
                    "session_store": InMemorySessionStore(),
                    "_analytics_coordinator": AnalyticsCoordinator(),
                }
            orchestrators = {
                kind: AgentOrchestrator(
                    settings=Settings(),
                    provider=ScriptedProvider([call, "It is sunny."], cycle=True),
                    model="gpt-4o",
                    tools=[fn],
                    **options,
                )
                for kind, fn in tools
            }
            results[measure] = await side_by_side(
                {
                    kind: (lambda o=orch: o.chat("Weather in Paris?"))
                    for kind, orch in orchestrators.items()
                },
                samples,
            )
            for orch in orchestrators.values():
                await orch.aclose()

    executor = ToolExecutor()
    tool_call = ToolCall(id="1", name="get_weather", arguments={"city": "Paris"})
    results["call"] = await side_by_side(
        {
            kind: (lambda t=fn: executor.run_one(tool_call, {"get_weather": t}))
            for kind, fn in tools
        },
        samples,
    )
    executor.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=2000)
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()
    results = asyncio.run(run(args.turns))
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}, {args.turns} samples each"
    )
    print(f"{'microseconds':20} {'mean':>8} {'p50':>8} {'p99':>8}")
    for measure, rows in results.items():
        for kind, row in rows.items():
            print(
                f"{measure + ' ' + kind:20} {row['mean_us']:8.0f} {row['p50_us']:8.0f} "
                f"{row['p99_us']:8.0f}"
            )
        extra = {q: rows["sync"][q] - rows["async"][q] for q in ("mean_us", "p50_us")}
        print(f"{measure + ' sync - async':20} {extra['mean_us']:8.0f} {extra['p50_us']:8.0f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
