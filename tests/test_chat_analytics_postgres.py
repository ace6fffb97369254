"""Chats keep going while the analytics database drops its connections, and every event
of every turn arrives in PostgreSQL exactly once."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest

if os.environ.get("VICTOR_REQUIRE_SERVICES") == "1":
    import asyncpg  # required: a missing driver fails, it does not skip
else:
    asyncpg = pytest.importorskip("asyncpg", reason="asyncpg (the postgres extra) is missing")

from helpers import CollectingExporter
from victor import AgentOrchestrator, Settings, tool
from victor.agent.coordinators import AnalyticsCoordinator
from victor.analytics import PostgreSQLAnalyticsExporter
from victor.providers import SimulatedProvider

pytestmark = pytest.mark.postgres


@tool
async def lookup_order(order_id: str) -> str:
    """Look an order up by its id."""
    await asyncio.sleep(0.001)
    return f"order {order_id}: shipped"


def chat_with_analytics(
    exporter: PostgreSQLAnalyticsExporter, tmp_path, seed: int
) -> tuple[CollectingExporter, AnalyticsCoordinator, AgentOrchestrator]:
    """An orchestrator whose events go to ``exporter`` (through the outbox) and to memory."""
    memory = CollectingExporter()
    analytics = AnalyticsCoordinator(
        [exporter, memory],
        outbox_path=tmp_path / "outbox.db",
        batch_size=50,
        flush_interval=0.02,
        retry_backoff=0.01,
        max_backoff=0.2,
    )
    orchestrator = AgentOrchestrator(
        settings=Settings(),
        provider=SimulatedProvider(seed=seed, latency_ms=2, tool_call_rate=0.5),
        model="gpt-4o-mini",
        tools=[lookup_order],
        _analytics_coordinator=analytics,
    )
    return memory, analytics, orchestrator


async def test_chats_survive_cut_connections_and_events_arrive_exactly_once(postgres_dsn, tmp_path):
    schema = f"victor_chat_{uuid.uuid4().hex[:12]}"
    app = f"victor-chat-{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(postgres_dsn, timeout=10)
    exporter = PostgreSQLAnalyticsExporter(
        postgres_dsn, schema=schema, application_name=app, max_pool_size=2
    )
    memory, analytics, orchestrator = chat_with_analytics(exporter, tmp_path, seed=11)
    done = asyncio.Event()
    kills = 0

    async def cut_connections() -> None:
        nonlocal kills
        while not done.is_set():
            await asyncio.sleep(0.05)
            kills += len(
                await admin.fetch(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = $1 AND pid <> pg_backend_pid()",
                    app,
                )
            )

    async def conversation(n: int) -> tuple[int, int]:
        # Six turns each, and on until the cutter has really cut a few connections (a
        # fast machine would otherwise finish between two cuts).
        asked = answered = 0
        while asked < 6 or (kills < 3 and asked < 500):
            response = await orchestrator.chat(
                f"where is order {n}-{asked}?", session_id=f"acme:user-{n}"
            )
            asked += 1
            answered += bool(response.content)
        return asked, answered

    cutter = asyncio.create_task(cut_connections())
    try:
        turns = await asyncio.gather(*(conversation(n) for n in range(40)))
        await analytics.flush()
    finally:
        done.set()
        await cutter
        await orchestrator.aclose()
    try:
        asked = sum(a for a, _ in turns)
        assert asked >= 240
        assert sum(b for _, b in turns) == asked  # no chat turn failed while it was cut
        assert kills >= 3  # the cuts really happened
        rows = await admin.fetch(f'SELECT event_id FROM "{schema}".victor_analytics_events')
        stored = [r["event_id"] for r in rows]
        emitted = [e.event_id for e in memory.events]
        assert len(emitted) > 240 * 3
        assert len(stored) == len(set(stored))  # none duplicated
        assert set(stored) == set(emitted)  # none lost
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


async def test_database_stopped_and_restarted_mid_run_every_event_exactly_once(
    throwaway_postgres, tmp_path
):
    """The analytics server goes away while chats run and comes back: no chat fails, the
    batches wait in the outbox, and every event of every turn is stored exactly once."""
    server = throwaway_postgres
    exporter = PostgreSQLAnalyticsExporter(server.dsn, max_pool_size=2, connect_timeout=2)
    memory, analytics, orchestrator = chat_with_analytics(exporter, tmp_path, seed=5)
    finished = asyncio.Event()

    async def conversation(n: int) -> tuple[int, int]:
        asked = answered = 0
        while not finished.is_set():
            response = await orchestrator.chat(
                f"where is order {n}-{asked}?", session_id=f"acme:user-{n}"
            )
            asked += 1
            answered += bool(response.content)
        return asked, answered

    chats = asyncio.gather(*(conversation(n) for n in range(20)))
    try:
        await asyncio.sleep(0.3)
        await asyncio.to_thread(server.stop)
        await asyncio.sleep(0.5)  # chats go on while the database is down
        down = analytics.stats.exporters["PostgreSQLAnalyticsExporter"]
        await asyncio.to_thread(server.start)
        await asyncio.sleep(0.3)
    finally:
        finished.set()
        turns = await chats
    async with asyncio.timeout(60):
        while not await analytics.flush():  # noqa: ASYNC110 - drains once the server is back
            await asyncio.sleep(0.1)
    await orchestrator.aclose()
    assert down.failed_batches >= 1 and not down.healthy  # it really was down
    asked = sum(a for a, _ in turns)
    assert asked == sum(b for _, b in turns) and asked > 40  # no chat turn failed
    conn = await asyncpg.connect(server.dsn, timeout=10)
    try:
        rows = await conn.fetch("SELECT event_id FROM victor_analytics_events")
    finally:
        await conn.close()
    stored = [r["event_id"] for r in rows]
    assert len(stored) == len(set(stored))  # none duplicated
    assert set(stored) == {e.event_id for e in memory.events}  # none lost
