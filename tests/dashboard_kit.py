"""A live dashboard for tests: an orchestrator on the simulated model through an A/B
experiment, its analytics in SQLite and on the dashboard, served by uvicorn on a free
loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import REQUIRE_SERVICES
from victor import AgentOrchestrator, Settings, tool
from victor.agent.coordinators import (
    AnalyticsCoordinator,
    ExperimentConfigCoordinator,
    ToolSelectionCoordinator,
)
from victor.analytics.exporters.sqlite import SQLiteAnalyticsExporter
from victor.dashboard.app import Dashboard
from victor.dashboard.serve import DashboardServer
from victor.errors import ProviderError
from victor.experiments import Experiment
from victor.providers import SimulatedProvider

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
VARIANTS = {"control": {"model": "gpt-4o-mini"}, "treatment": {"model": "claude-haiku-4-5"}}


def require_chromium() -> str:
    if shutil.which(CHROMIUM):
        return CHROMIUM
    message = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


@tool
async def get_weather(city: str) -> str:
    """Current weather for a city.

    Args:
        city: City name.
    """
    return f"{city}: 18 C"


@tool
async def search_docs(query: str) -> str:
    """Search the documentation.

    Args:
        query: What to look for.
    """
    if "fail" in query:
        raise RuntimeError("search index unavailable")
    return "3 pages"


@dataclass
class LiveStack:
    dashboard: Dashboard
    server: DashboardServer
    orchestrator: AgentOrchestrator
    analytics: AnalyticsCoordinator
    store: Path
    rng: random.Random

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.server.port}/ws/analytics"

    async def chats(self, sessions: int, turns: int = 2, prefix: str = "s") -> None:
        questions = ["Weather in Paris?", "Search docs for limits", "Weather in Oslo?"]
        for s in range(sessions):
            session_id = f"{prefix}-{self.rng.randrange(10**9)}"
            tenant = self.rng.choice(["acme", "globex"])
            for _ in range(turns):
                with contextlib.suppress(ProviderError):  # simulated server errors
                    await self.orchestrator.chat(
                        self.rng.choice(questions), session_id=f"{tenant}:{session_id}-{s}"
                    )
            await self.orchestrator.record_feedback(f"{tenant}:{session_id}-{s}", self.rng.random())
        await self.analytics.flush()


@asynccontextmanager
async def live_stack(tmp_path: Path, **dashboard_options: Any) -> AsyncIterator[LiveStack]:
    store = tmp_path / "analytics.db"
    dashboard = Dashboard(store, **dashboard_options)
    analytics = AnalyticsCoordinator(
        [SQLiteAnalyticsExporter(store), dashboard.exporter()], flush_interval=0.05
    )
    experiment = Experiment("answer-model", VARIANTS, seed="dash")
    orchestrator = AgentOrchestrator(
        settings=Settings(data_dir=tmp_path / "data", session_store="memory"),
        provider=SimulatedProvider(seed=3, error_rate=0.05, tool_call_rate=0.6, latency_ms=5),
        tools=[get_weather, search_docs],
        _config_coordinator=ExperimentConfigCoordinator(experiment, analytics=analytics),
        _analytics_coordinator=analytics,
        _tool_selection_coordinator=ToolSelectionCoordinator(
            max_tools=1, default_builtin="keyword"
        ),
    )
    server = DashboardServer(dashboard, "127.0.0.1", 0)
    await server.start()
    try:
        async with orchestrator:
            yield LiveStack(dashboard, server, orchestrator, analytics, store, random.Random(5))
    finally:
        await server.aclose()


async def until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    """Wait until ``predicate()`` is true (a plain state check, polled)."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - polling a plain predicate
            await asyncio.sleep(0.01)


def hello(token: str | None = None, **extra: Any) -> str:
    return json.dumps({"type": "hello", "token": token, **extra})
