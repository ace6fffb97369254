"""``victor demo``: simulated traffic through the whole agent loop, offline."""

from __future__ import annotations

import hashlib
import random
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from victor.agent.coordinators import AnalyticsCoordinator, ConfigCoordinator
from victor.agent.orchestrator import AgentOrchestrator
from victor.config.settings import Settings
from victor.errors import ProviderError
from victor.protocols import AnalyticsEvent, ExportResult, IAnalyticsExporter
from victor.providers import SimulatedProvider
from victor.tools import tool

VARIANTS = {
    "control": {"model": "gpt-4o-mini", "temperature": 0.7},
    "treatment": {"model": "claude-haiku-4-5", "temperature": 0.3},
}

QUESTIONS = (
    "What's the weather in Paris today?",
    "Convert 120 USD to EUR please",
    "Search the docs for rate limiting",
    "What is the weather like in Tokyo?",
    "How much is 3 GBP in USD?",
    "Find the docs page about streaming",
    "Thanks, that helps!",
)


@tool
async def get_weather(city: str) -> str:
    """Current weather for a city.

    Args:
        city: City name, e.g. "Paris".
    """
    return f"{city}: 18 C, light rain"


@tool(cost_tier="low")
def convert_currency(amount: float, source: str, target: str) -> str:
    """Convert an amount of money between currencies.

    Args:
        amount: How much money.
        source: ISO code of the currency to convert from.
        target: ISO code of the currency to convert to.
    """
    return f"{amount} {source} = {round(amount * 0.92, 2)} {target}"


@tool
async def search_docs(query: str) -> str:
    """Search the product documentation.

    Args:
        query: What to look for.
    """
    return f"3 pages match {query!r}: 'Getting started', 'Limits', 'Streaming'"


class StickyABConfig(ConfigCoordinator):
    """Assigns each session to a variant by a hash of its id: the same answer on every
    process and every run, so a session never changes variant."""

    def __init__(self, variants: dict[str, dict[str, Any]]) -> None:
        super().__init__()
        self.variants = variants
        self.names = sorted(variants)

    async def load_config(
        self, session_id: str, config_override: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        digest = hashlib.sha256(f"demo:{session_id}".encode()).digest()
        name = self.names[int.from_bytes(digest[:8], "big") % len(self.names)]
        config = {**self.variants[name], "variant": name, "experiment": "demo"}
        return {**config, **(config_override or {})}


class CountingExporter(IAnalyticsExporter):
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    async def export(self, events: Sequence[AnalyticsEvent]) -> ExportResult:
        self.counts.update(e.type for e in events)
        return ExportResult(success=True, exported_count=len(events))


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_demo(*, sessions: int, turns: int, seed: int, latency_ms: float) -> None:
    console = Console()
    if not console.is_terminal:  # piped: rich would fold the table to 80 columns
        console = Console(width=120)
    rng = random.Random(seed)
    from victor.analytics.exporters.sqlite import SQLiteAnalyticsExporter

    settings = Settings()
    exporter = CountingExporter()
    provider = SimulatedProvider(
        seed=seed,
        latency_ms=latency_ms,
        error_rate=0.02,
        tool_call_rate=0.7,
        model_quality={"gpt-4o-mini": 0.72, "claude-haiku-4-5": 0.80},
    )
    orchestrator = AgentOrchestrator(
        settings=settings,
        provider=provider,
        tools=[get_weather, convert_currency, search_docs],
        system_prompt="You are a helpful assistant.",
        _config_coordinator=StickyABConfig(VARIANTS),
        _analytics_coordinator=AnalyticsCoordinator(
            exporters=[SQLiteAnalyticsExporter(settings.data_dir / "analytics.db"), exporter],
            flush_interval=0.2,
        ),
    )
    stats: dict[str, dict[str, Any]] = defaultdict(
        lambda: {
            "sessions": set(),
            "turns": 0,
            "tools": 0,
            "tokens": 0,
            "cost": 0.0,
            "latency": [],
            "good": 0,
            "errors": 0,
        }
    )
    run = f"{int(time.time())}-{seed}"
    console.print(
        f"[bold]Victor demo[/bold]: {sessions} conversations x {turns} turns, "
        "simulated model, offline\n"
    )
    started = time.perf_counter()
    shown = False
    async with orchestrator:
        for s in range(sessions):
            session_id = f"demo-{run}-{s}"
            for _ in range(turns):
                question = rng.choice(QUESTIONS)
                try:
                    response = await orchestrator.chat(question, session_id=session_id)
                except ProviderError:
                    variant = await orchestrator.config_coordinator.load_config(session_id)
                    stats[variant["variant"]]["errors"] += 1
                    continue
                row = stats[response.variant or "-"]
                row["sessions"].add(session_id)
                row["turns"] += 1
                row["tools"] += len(response.tool_calls)
                row["tokens"] += response.usage.total_tokens
                row["cost"] += response.cost or 0.0
                row["latency"].append(response.latency_ms)
                row["good"] += bool(isinstance(response.raw, dict) and response.raw.get("good"))
                if s == 0 and not shown:
                    console.print(f"[dim]first answer of {session_id}:[/dim] {response}\n")
                    shown = True
    elapsed = time.perf_counter() - started

    table = Table(title="Per variant")
    for col in (
        "variant",
        "model",
        "sessions",
        "turns",
        "tools",
        "tokens",
        "cost $",
        "p50 ms",
        "p95 ms",
        "good",
        "errors",
    ):
        table.add_column(col, justify="right" if col != "variant" else "left")
    for name in sorted(stats):
        row = stats[name]
        table.add_row(
            name,
            VARIANTS.get(name, {}).get("model", "-"),
            str(len(row["sessions"])),
            str(row["turns"]),
            str(row["tools"]),
            f"{row['tokens']:,}",
            f"{row['cost']:.4f}",
            f"{_pct(row['latency'], 0.5):.1f}",
            f"{_pct(row['latency'], 0.95):.1f}",
            f"{row['good'] / max(row['turns'], 1):.0%}",
            str(row["errors"]),
        )
    console.print(table)
    events = Table(title="Analytics events")
    events.add_column("type")
    events.add_column("count", justify="right")
    for kind, count in sorted(exporter.counts.items()):
        events.add_row(kind, f"{count:,}")
    console.print(events)
    total_turns = sum(r["turns"] for r in stats.values())
    console.print(
        f"{total_turns} turns in {elapsed:.2f} s "
        f"(median model latency {latency_ms:g} ms); history and analytics in "
        f"{settings.data_dir} (see them with: victor analytics)"
    )
