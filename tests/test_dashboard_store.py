"""The dashboard reads the recent window from either store, SQLite or PostgreSQL, with
the same events in the same shape, and follows a store as it grows."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from victor.analytics.exporters.postgres import PostgreSQLAnalyticsExporter
from victor.analytics.exporters.sqlite import SQLiteAnalyticsExporter
from victor.dashboard.bus import LocalBus
from victor.dashboard.feed import StoreTail
from victor.dashboard.hub import Hub
from victor.dashboard.store import EventStore
from victor.protocols import AnalyticsEvent


def _events(now: datetime) -> list[AnalyticsEvent]:
    return [
        AnalyticsEvent(
            type="token_usage",
            session_id="acme:s1",
            tenant_id="acme",
            timestamp=now - timedelta(minutes=minutes),
            data={"gen_ai.usage.input_tokens": minutes, "cost_usd": 0.5},
        )
        for minutes in (90, 10, 1)
    ]


def _check(events: list[dict], written: list[AnalyticsEvent]) -> None:
    recent = written[1:]  # the one of 90 minutes ago is outside the window
    assert [e["id"] for e in events] == [e.event_id for e in recent]  # oldest first
    first = events[0]
    assert first["tenant"] == "acme" and first["type"] == "token_usage"
    assert first["data"]["gen_ai.usage.input_tokens"] == 10
    assert first["ts"] == pytest.approx(recent[0].timestamp.timestamp() * 1000, abs=1)


async def test_sqlite_window(tmp_path):
    written = _events(datetime.now(UTC))
    exporter = SQLiteAnalyticsExporter(tmp_path / "a.db")
    await exporter.export(written)
    await exporter.shutdown()
    store = EventStore(tmp_path / "a.db")
    _check(await store.since(time.time() - 3600), written)
    assert await EventStore(tmp_path / "absent.db").since(0) == []


@pytest.mark.postgres
async def test_postgres_window(postgres_dsn, pg_schema):
    schema = pg_schema
    written = _events(datetime.now(UTC))
    exporter = PostgreSQLAnalyticsExporter(postgres_dsn, schema=schema)
    store = EventStore(f"{postgres_dsn}?schema={schema}")
    try:
        assert await store.since(0) == []  # no table yet
        result = await exporter.export(written)
        assert result.success
        _check(await store.since(time.time() - 3600), written)
    finally:
        await exporter.shutdown()
        await store.aclose()


async def test_the_tail_publishes_each_new_event_once(tmp_path):
    hub = Hub()
    sub, _ = hub.subscribe()
    exporter = SQLiteAnalyticsExporter(tmp_path / "a.db")
    tail = StoreTail(EventStore(tmp_path / "a.db"), LocalBus(hub))
    now = datetime.now(UTC)
    late = AnalyticsEvent(type="chat_complete", timestamp=now - timedelta(seconds=5))
    await exporter.export([AnalyticsEvent(type="chat_complete", timestamp=now)])
    assert await tail.poll() == 1
    await exporter.export([late])  # stored late: its timestamp is before the last look
    assert await tail.poll() == 1
    assert await tail.poll() == 0
    await exporter.shutdown()
    frames = [json.loads(sub.queue.get_nowait()) for _ in range(2)]
    ids = [e["id"] for frame in frames for e in frame["events"]]
    assert ids[1] == late.event_id and len(set(ids)) == 2
