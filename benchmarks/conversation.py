"""A 25-turn conversation on one session, with the history persisted after every turn.

Victor: default ``Settings()`` (SQLite history, durable commits: each turn returns once its
history is committed), a zero-latency ``ScriptedProvider``; the same with write-behind
(``session_durability="async"``), with the in-memory store, and with the PostgreSQL store
(when ``--postgres DSN`` is given). Analytics off, so that only the history is measured.
Then ``--sessions`` conversations run at once
(turns per second: group commit lets concurrent turns share a transaction). When LangGraph
and its SQLite checkpointer are installed, the same conversation runs
through a one-node ``StateGraph`` over ``MessagesState`` with ``AsyncSqliteSaver`` and a
fake chat model, side by side.

    python benchmarks/conversation.py [--runs 20] [--postgres postgresql://...] [--json out]

Each run is a new session (a new thread for LangGraph); the figure is the median of the
runs' total times, with the fastest and slowest run beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable

TURNS = 25


async def timed_runs(run: Callable[[int], Awaitable[None]], runs: int) -> dict[str, float]:
    await run(-1)  # warm-up
    totals = []
    for i in range(runs):
        start = time.perf_counter()
        await run(i)
        totals.append((time.perf_counter() - start) * 1000)
    return {
        "median_ms": statistics.median(totals),
        "min_ms": min(totals),
        "max_ms": max(totals),
        "per_turn_us": statistics.median(totals) * 1000 / TURNS,
    }


async def calibration(dsn: str | None) -> dict[str, float]:
    """What this machine charges for the two waits a durable turn cannot avoid: a round
    trip to a thread (SQLite's writer) and to the database server (PostgreSQL). On a
    virtual machine both vary with how idle its cores are."""
    samples = []
    for _ in range(2000):
        start = time.perf_counter()
        await asyncio.to_thread(lambda: None)
        samples.append(time.perf_counter() - start)
    result = {"thread_round_trip_us": statistics.median(samples) * 1e6}
    if dsn:
        import asyncpg

        conn = await asyncpg.connect(dsn)
        samples = []
        for _ in range(1000):
            start = time.perf_counter()
            await conn.fetchval("SELECT 1")
            samples.append(time.perf_counter() - start)
        await conn.close()
        result["postgres_round_trip_us"] = statistics.median(samples) * 1e6
    return result


def orchestrator(data_dir: str, store: str, durability: str):
    """An orchestrator answering instantly, its history in ``store``, analytics off."""
    from victor import AgentOrchestrator, Settings
    from victor.agent.coordinators import AnalyticsCoordinator
    from victor.providers import ScriptedProvider

    settings = Settings(
        data_dir=data_dir, session_store=store, session_durability=durability,
        enable_analytics=False,
    )  # fmt: skip
    return AgentOrchestrator(
        settings=settings,
        provider=ScriptedProvider(["Hello!"], cycle=True),
        model="gpt-4o",
        _analytics_coordinator=AnalyticsCoordinator(),
    )


async def victor(runs: int, *, store: str = "sqlite", durability: str = "sync") -> dict:
    with tempfile.TemporaryDirectory() as data_dir:
        orch = orchestrator(data_dir, store, durability)
        prefix = uuid.uuid4().hex[:8]

        async def run(i: int) -> None:
            for turn in range(TURNS):
                await orch.chat(f"Message {turn}", session_id=f"{prefix}-{i}")

        result = await timed_runs(run, runs)
        await orch.aclose()
    return result


async def victor_concurrent(
    sessions: int, *, store: str = "sqlite", durability: str = "sync"
) -> dict:
    """``sessions`` conversations of 25 turns at once: group commit shares transactions."""
    with tempfile.TemporaryDirectory() as data_dir:
        orch = orchestrator(data_dir, store, durability)
        prefix = uuid.uuid4().hex[:8]

        async def conversation(i: int) -> None:
            for turn in range(TURNS):
                await orch.chat(f"Message {turn}", session_id=f"{prefix}-c{i}")

        start = time.perf_counter()
        await asyncio.gather(*(conversation(i) for i in range(sessions)))
        elapsed = time.perf_counter() - start
        await orch.aclose()
    return {"sessions": sessions, "turns_per_s": sessions * TURNS / elapsed}


async def langgraph(runs: int) -> dict | None:
    try:
        from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
        from langchain_core.messages import AIMessage
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
        from langgraph.graph import START, MessagesState, StateGraph
    except ImportError:
        return None

    def answers():
        while True:
            yield AIMessage(content="Hello!")

    model = GenericFakeChatModel(messages=answers())

    async def call_model(state: MessagesState) -> dict:
        return {"messages": [await model.ainvoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("model", call_model)
    builder.add_edge(START, "model")
    with tempfile.TemporaryDirectory() as data_dir:
        async with AsyncSqliteSaver.from_conn_string(
            os.path.join(data_dir, "checkpoints.db")
        ) as saver:
            graph = builder.compile(checkpointer=saver)

            async def run(i: int) -> None:
                config = {"configurable": {"thread_id": f"t-{i}"}}
                for turn in range(TURNS):
                    await graph.ainvoke({"messages": [("user", f"Message {turn}")]}, config=config)

            return await timed_runs(run, runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--postgres", help="a PostgreSQL DSN to measure that store too")
    parser.add_argument("--sessions", type=int, default=100, help="concurrent conversations")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()

    report: dict[str, object] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "turns": TURNS,
        "runs": args.runs,
    }
    report["calibration"] = asyncio.run(calibration(args.postgres))
    report["victor_sqlite"] = asyncio.run(victor(args.runs))
    report["victor_sqlite_write_behind"] = asyncio.run(victor(args.runs, durability="async"))
    report["victor_memory"] = asyncio.run(victor(args.runs, store="memory"))
    if args.postgres:
        report["victor_postgres"] = asyncio.run(victor(args.runs, store=args.postgres))
    report["langgraph_sqlite"] = asyncio.run(langgraph(args.runs))
    concurrent = {
        "sqlite": asyncio.run(victor_concurrent(args.sessions)),
        "sqlite_write_behind": asyncio.run(victor_concurrent(args.sessions, durability="async")),
        "memory": asyncio.run(victor_concurrent(args.sessions, store="memory")),
    }
    if args.postgres:
        concurrent["postgres"] = asyncio.run(victor_concurrent(args.sessions, store=args.postgres))
    report["concurrent"] = concurrent

    print(f"{report['machine']}, {report['date']}: {TURNS} turns, median of {args.runs} runs")
    print(f"{'run':32} {'total ms':>9} {'min':>7} {'max':>7} {'us/turn':>8}")
    for name, row in report.items():
        if isinstance(row, dict) and "median_ms" in row:
            print(
                f"{name:32} {row['median_ms']:9.2f} {row['min_ms']:7.2f} {row['max_ms']:7.2f} "
                f"{row['per_turn_us']:8.0f}"
            )
    print(
        "calibration (median round trip, us): "
        + ", ".join(f"{k} {v:.0f}" for k, v in report["calibration"].items())
    )
    print(f"{args.sessions} conversations of {TURNS} turns at once:")
    for name, row in concurrent.items():
        print(f"{name:32} {row['turns_per_s']:9.0f} turns/s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)


if __name__ == "__main__":
    main()
