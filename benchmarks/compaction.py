"""Compaction of a 200-message conversation, per strategy.

The conversation: a system prompt and 50 turns of four messages (a user question, an
assistant tool call with its arguments, the tool's result, and the answer), cut at 200
messages. Each
strategy compacts it to half that budget (the latest user message kept, tool calls never
split). Timed: ``await strategy.compact(Context(...))``, after 50 warm-up runs, on one
core, token counting included. Beside it, when ``langchain-core`` is installed:
``trim_messages(strategy="last", token_counter="approximate")`` on the same conversation
and budget (LangChain's built-in counterpart of truncation).

    python benchmarks/compaction.py [--runs 2000] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
from collections.abc import Awaitable, Callable

from victor.context import KeepRecentCompactionStrategy, TruncationCompactionStrategy
from victor.protocols import Context, Message, ToolCall
from victor.protocols.tokens import estimate_message_tokens

TURNS = 50
TOPICS = ["invoice", "deploy", "weather", "database", "python", "latency", "cache", "billing"]


def conversation() -> list[Message]:
    messages = [Message(role="system", content="You are a helpful assistant. " * 10)]
    for i in range(TURNS):
        topic = TOPICS[i % len(TOPICS)]
        call = ToolCall(id=f"c{i}", name="search", arguments={"query": f"{topic} {i} " * 10})
        messages += [
            Message(role="user", content=f"Question {i} about the {topic}: " + "words " * 30),
            Message(role="assistant", content="", tool_calls=[call]),
            Message(role="tool", content=f"{topic} result " * 60, tool_call_id=call.id),
            Message(role="assistant", content=f"About the {topic}: " + "answer " * 80),
        ]
    return messages[:200]


async def time_runs(run: Callable[[], Awaitable[object]], runs: int) -> dict[str, float]:
    for _ in range(50):
        await run()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        await run()
        samples.append((time.perf_counter() - start) * 1e6)
    samples.sort()
    return {
        "median_us": round(statistics.median(samples), 1),
        "p99_us": round(samples[int(len(samples) * 0.99) - 1], 1),
        "mean_us": round(statistics.fmean(samples), 1),
    }


async def main_async(runs: int) -> dict[str, object]:
    messages = conversation()
    total = estimate_message_tokens(messages)
    budget = total // 2
    report: dict[str, object] = {
        "messages": len(messages),
        "estimated_tokens": total,
        "budget": budget,
        "python": platform.python_version(),
        "results": {},
    }
    results: dict[str, object] = report["results"]  # type: ignore[assignment]
    query = "what did the invoice search return?"
    for name, strategy in [
        ("victor truncation", TruncationCompactionStrategy()),
        ("victor keep_recent", KeepRecentCompactionStrategy(recent_turns=3)),
    ]:

        async def run(strategy=strategy) -> object:
            context = Context(messages=messages, max_tokens=budget, metadata={"query": query})
            return await strategy.compact(context)

        kept = (await run()).messages  # type: ignore[attr-defined]
        results[name] = {**await time_runs(run, runs), "kept": len(kept)}
    try:
        from langchain_core.messages import (
            AIMessage,
            HumanMessage,
            SystemMessage,
            ToolMessage,
            trim_messages,
        )
    except ImportError:
        return report
    lc: list[object] = []
    for m in messages:
        if m.role == "system":
            lc.append(SystemMessage(m.content))
        elif m.role == "user":
            lc.append(HumanMessage(m.content))
        elif m.role == "tool":
            lc.append(ToolMessage(m.content, tool_call_id=m.tool_call_id or ""))
        else:
            calls = [{"id": c.id, "name": c.name, "args": c.arguments} for c in m.tool_calls]
            lc.append(AIMessage(m.content, tool_calls=calls))

    async def trim() -> object:
        return trim_messages(
            lc,
            max_tokens=budget,
            strategy="last",
            token_counter="approximate",
            include_system=True,
            start_on="human",
        )

    import langchain_core

    kept_lc = await trim()
    results[f"langchain-core {langchain_core.__version__} trim_messages"] = {
        **await time_runs(trim, runs),
        "kept": len(kept_lc),  # type: ignore[arg-type]
    }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()
    report = asyncio.run(main_async(args.runs))
    print(json.dumps(report, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)


if __name__ == "__main__":
    main()
