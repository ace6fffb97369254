"""``victor demo``: simulated traffic through the whole agent loop and an A/B
experiment, offline, then the experiment's report.

Reproducible: sessions run one after the other on one seeded simulated model, and
sessions are assigned by the experiment's hash, so the same ``--seed`` gives the same
split, answers, tokens, costs and feedback; latencies are the simulated model's, on a
virtual clock that its delays move on (no real waiting), so the same output entire.
The demo keeps its own data directory (``<data_dir>/demo``), emptied each run.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from victor.agent.coordinators import AnalyticsCoordinator, ExperimentConfigCoordinator
from victor.agent.orchestrator import AgentOrchestrator
from victor.config.settings import Settings
from victor.errors import ProviderError
from victor.experiments import Experiment
from victor.providers import SimulatedClock, SimulatedProvider
from victor.tools import tool

EXPERIMENT = "demo-model"
VARIANTS = {
    "control": {"model": "gpt-4o-mini", "temperature": 0.7},
    "treatment": {"model": "claude-haiku-4-5", "temperature": 0.3},
}
# What differs by variant: answer quality, and latency (the price list gives the cost).
QUALITY = {"gpt-4o-mini": 0.70, "claude-haiku-4-5": 0.80}
LATENCY_FACTOR = {"gpt-4o-mini": 1.0, "claude-haiku-4-5": 1.4}

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


# With the dashboard: the pause between two conversations, real seconds, so the charts move.
DASHBOARD_PACE_S = 0.1


async def run_demo(
    *,
    sessions: int,
    turns: int,
    seed: int,
    latency_ms: float,
    dashboard: tuple[str, int, str | None] | None = None,
) -> None:
    """The demo; ``dashboard`` = (host, port, token) serves the live page meanwhile."""
    from victor.analytics.exporters.sqlite import SQLiteAnalyticsExporter
    from victor.cli.experiments import print_report
    from victor.experiments import report

    console = Console()
    if not console.is_terminal:  # piped: rich would fold the tables to 80 columns
        console = Console(width=150)
    data_dir = Settings().data_dir / "demo"
    data_dir.mkdir(parents=True, exist_ok=True)
    store = data_dir / "analytics.db"
    for stale in data_dir.glob("analytics*.db*"):  # a fresh store: the same output each run
        stale.unlink()
    settings = Settings(data_dir=data_dir, session_store="memory")
    experiment = Experiment(EXPERIMENT, VARIANTS, seed=f"demo-{seed}")
    analytics = AnalyticsCoordinator([SQLiteAnalyticsExporter(store)])
    server = None
    if dashboard is not None:
        server = await _start_dashboard(console, store, analytics, *dashboard)
    clock = SimulatedClock()
    provider = SimulatedProvider(
        clock=clock,
        seed=seed,
        error_rate=0.02,
        tool_call_rate=0.7,
        model_quality=QUALITY,
        model_latency_ms={m: latency_ms * f for m, f in LATENCY_FACTOR.items()},
    )
    orchestrator = AgentOrchestrator(
        settings=settings,
        provider=provider,
        tools=[get_weather, convert_currency, search_docs],
        system_prompt="You are a helpful assistant.",
        _config_coordinator=ExperimentConfigCoordinator(experiment, analytics=analytics),
        _analytics_coordinator=analytics,
        clock=clock,
    )
    rng = random.Random(seed)
    arms = ", ".join(f"{v}: {c['model']}" for v, c in VARIANTS.items())
    console.print(
        f"[bold]Victor demo[/bold]: {sessions} conversations x {turns} turns through "
        f"experiment {EXPERIMENT!r} ({arms}"
        "), simulated model, offline\n",
        highlight=False,
    )
    failed = 0
    progress = Progress(
        TextColumn("conversations"), BarColumn(), MofNCompleteColumn(), console=console,
        transient=True,
    )  # fmt: skip
    async with orchestrator:
        with progress:
            task = progress.add_task("run", total=sessions)
            for s in range(sessions):
                session_id = f"demo-{seed}-{s}"
                good = []
                for _ in range(turns):
                    try:
                        response = await orchestrator.chat(rng.choice(QUESTIONS), session_id)
                    except ProviderError:
                        failed += 1
                        continue
                    good.append(float(bool(response.raw and response.raw.get("good"))))
                if good:  # the user rates the conversation: were the answers good?
                    await orchestrator.record_feedback(session_id, sum(good) / len(good))
                progress.advance(task)
                if server is not None:
                    await asyncio.sleep(DASHBOARD_PACE_S)
    result = await report(experiment, store=store, primary="feedback")
    print_report(console, result)
    console.print(
        f"\n{sessions * turns - failed} turns answered, {failed} failed (simulated server "
        f"errors) in {clock():.1f} s of simulated model time. Events in {store}: see them with "
        f"victor analytics --db {store} --by variant, or "
        f"victor experiments report {EXPERIMENT} --db {store}",
        highlight=False,
        soft_wrap=True,
    )
    if server is not None:
        from victor.cli.dashboard import _until_interrupted

        console.print("\nThe dashboard stays up: Ctrl-C to stop.")
        try:
            await _until_interrupted()
        finally:
            await server.aclose()


async def _start_dashboard(
    console: Console, store: Any, analytics: AnalyticsCoordinator, host: str, port: int,
    token: str | None,
) -> Any:  # fmt: skip
    """Serve the dashboard over the demo's store, fed live by the demo's analytics."""
    from victor.cli.dashboard import dashboard_url, start_server
    from victor.dashboard.app import Dashboard

    live = Dashboard(store, token=token)
    server = await start_server(live, host, port)
    analytics.exporters.append(live.exporter())
    console.print(
        f"Dashboard at [bold]{dashboard_url(server.url, token)}[/bold]\n",
        highlight=False,
        soft_wrap=True,
    )
    return server
