"""The built-in exporters: SQLite, JSON lines, console and OpenTelemetry."""

from __future__ import annotations

import io
import json
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from sample_traffic import sample_events
from victor.analytics import (
    AnalyticsReader,
    ConsoleAnalyticsExporter,
    JSONLAnalyticsExporter,
    SQLiteAnalyticsExporter,
)
from victor.analytics.events import MODEL
from victor.analytics.exporters.sqlite import open_sqlite
from victor.protocols import AnalyticsEvent

TABLE = "victor_analytics_events"


def event(i: int = 0, **fields) -> AnalyticsEvent:
    fields.setdefault("data", {"n": i})
    return AnalyticsEvent.model_construct(type="feedback", session_id="acme:s", **fields)


async def test_sqlite_stores_batches_idempotently_in_wal_mode(tmp_path):
    db = tmp_path / "nested" / "a.db"
    exporter = SQLiteAnalyticsExporter(db)
    ts = datetime(2026, 11, 25, tzinfo=UTC)
    events = [event(i, timestamp=ts) for i in range(100)]  # one instant, distinct events
    result = await exporter.export(events)
    assert result.success and result.exported_count == 100
    assert (await exporter.export(events[:10])).success  # a replay
    await exporter.shutdown()
    conn = sqlite3.connect(db)
    assert conn.execute(f"SELECT COUNT(*), COUNT(DISTINCT event_id) FROM {TABLE}").fetchone() == (
        100,
        100,
    )
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute(f"SELECT ts, tenant_id FROM {TABLE} LIMIT 1").fetchone() == (
        ts.timestamp(),
        "acme",
    )


async def test_sqlite_brings_an_older_database_up_to_date(tmp_path):
    db = tmp_path / "a.db"
    exporter = SQLiteAnalyticsExporter(db)
    await exporter.export([event()])
    await exporter.shutdown()
    sqlite3.connect(db, isolation_level=None).execute(f"DROP VIEW {TABLE}_v")  # made later
    conn = open_sqlite(db, TABLE)
    [(time_text, n)] = conn.execute(f"SELECT time, data FROM {TABLE}_v").fetchall()
    assert time_text.endswith("Z") and json.loads(n) == {"n": 0}


async def test_sqlite_rejects_bad_events_and_keeps_the_rest(tmp_path):
    exporter = SQLiteAnalyticsExporter(tmp_path / "a.db")
    bad = event(data={"x": object()})
    result = await exporter.export([event(1), bad, event(2)])
    assert result.exported_count == 2 and result.rejected_event_ids == [bad.event_id]
    assert bad.event_id in result.error and "not JSON-serialisable" in result.error
    await exporter.shutdown()


async def test_sqlite_default_path_is_in_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VICTOR_DATA_DIR", str(tmp_path / "data"))
    exporter = SQLiteAnalyticsExporter()
    assert exporter.path == tmp_path / "data" / "analytics.db"


def test_invalid_table_name_is_refused(tmp_path):
    with pytest.raises(ValueError, match="plain SQL identifier"):
        SQLiteAnalyticsExporter(tmp_path / "a.db", table="x; DROP TABLE y")


async def test_sqlite_sustains_a_realistic_load(tmp_path):
    exporter = SQLiteAnalyticsExporter(tmp_path / "a.db")
    events = list(sample_events(5000, seed=1))
    for start in range(0, len(events), 500):
        assert (await exporter.export(events[start : start + 500])).success
    await exporter.shutdown()
    conn = sqlite3.connect(tmp_path / "a.db")
    assert conn.execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone() == (5000,)


async def test_jsonl_appends_lines(tmp_path):
    path = tmp_path / "logs" / "events.jsonl"
    exporter = JSONLAnalyticsExporter(path, fsync=True)
    bad = event(data={"x": {1, object()}})
    result = await exporter.export([event(1), bad, event(2)])
    assert result.exported_count == 2 and result.rejected_event_ids == [bad.event_id]
    await exporter.export([event(3)])
    await exporter.shutdown()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["data"]["n"] for line in lines] == [1, 2, 3]
    await exporter.export([event(4)])  # usable again after shutdown
    await exporter.shutdown()
    assert len(path.read_text().splitlines()) == 4


async def test_console_writes_json_lines_to_its_stream():
    stream = io.StringIO()
    exporter = ConsoleAnalyticsExporter(stream)
    result = await exporter.export([event(1), event(2)])
    assert result.success and result.exported_count == 2
    assert [json.loads(x)["data"]["n"] for x in stream.getvalue().splitlines()] == [1, 2]


async def test_opentelemetry_spans_and_metrics_follow_genai_conventions():
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind, StatusCode

    from victor.analytics import OpenTelemetryAnalyticsExporter

    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    exporter = OpenTelemetryAnalyticsExporter(
        tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[reader])
    )
    ts = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    llm = {
        MODEL: "gpt-4o",
        "gen_ai.provider.name": "openai",
        "latency_ms": 250.0,
        "gen_ai.usage.input_tokens": 100,
        "gen_ai.usage.output_tokens": 20,
        "gen_ai.response.finish_reasons": ["stop"],
    }
    usage = {
        MODEL: "gpt-4o",
        "gen_ai.usage.input_tokens": 100,
        "gen_ai.usage.output_tokens": 20,
        "cost_usd": 0.0005,
    }
    tool = {
        "tool": "search",
        "gen_ai.tool.name": "search",
        "gen_ai.tool.call.id": "c1",
        "duration_ms": 12.0,
        "is_error": True,
    }
    events = [
        AnalyticsEvent.model_construct(
            type="llm_request", session_id="t:s", data=llm, timestamp=ts
        ),
        AnalyticsEvent.model_construct(type="token_usage", data=usage, timestamp=ts),
        AnalyticsEvent.model_construct(type="tool_call", data=tool, timestamp=ts),
        AnalyticsEvent.model_construct(type="error", data={"error_type": "Boom"}, timestamp=ts),
        AnalyticsEvent.model_construct(type="llm_request", data=[1], timestamp=ts),  # malformed
    ]
    result = await exporter.export(events)
    assert result.exported_count == 4 and len(result.rejected_event_ids) == 1

    by_name = {s.name: s for s in spans.get_finished_spans()}
    chat = by_name["chat gpt-4o"]
    assert chat.kind == SpanKind.CLIENT and chat.parent is None
    assert chat.instrumentation_scope.name == "victor.analytics"
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.usage.input_tokens"] == 100
    assert chat.attributes["gen_ai.conversation.id"] == "t:s"
    assert chat.end_time - chat.start_time == 250_000_000
    assert chat.end_time == int(ts.timestamp() * 1e9)
    tool_span = by_name["execute_tool search"]
    assert tool_span.attributes["gen_ai.tool.call.id"] == "c1"
    assert tool_span.status.status_code == StatusCode.ERROR
    assert by_name["victor.error"].attributes["error.type"] == "Boom"

    metrics = {
        m.name: m
        for rm in reader.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    tokens = metrics["gen_ai.client.token.usage"]
    kinds = {p.attributes["gen_ai.token.type"]: p.sum for p in tokens.data.data_points}
    assert kinds == {"input": 100, "output": 20}
    duration = metrics["gen_ai.client.operation.duration"]
    assert duration.unit == "s"
    seconds = {p.attributes["gen_ai.operation.name"]: p.sum for p in duration.data.data_points}
    assert seconds == pytest.approx({"chat": 0.25, "execute_tool": 0.012})
    cost = metrics["victor.gen_ai.cost"].data.data_points[0]
    assert cost.value == pytest.approx(0.0005)


def test_importing_victor_analytics_stays_light():
    import subprocess
    import sys

    code = (
        "import sys, victor.analytics; "
        "print(any(m in sys.modules for m in ('asyncpg', 'opentelemetry', 'sqlite3')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_sample_traffic_is_realistic():
    events = list(sample_events(500, seed=2, span=timedelta(minutes=5)))
    kinds = {e.type for e in events}
    assert {"llm_request", "token_usage", "tool_call", "chat_complete"} <= kinds


async def test_opentelemetry_exporter_drives_the_sdk_off_the_event_loop():
    """A span processor that exports synchronously (to a slow collector) must not run on
    the chat's loop thread."""
    pytest.importorskip("opentelemetry.sdk")
    import threading

    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

    from victor.analytics import OpenTelemetryAnalyticsExporter

    threads: set[int] = set()

    class Recording(SpanProcessor):
        def on_end(self, span) -> None:  # type: ignore[no-untyped-def]
            threads.add(threading.get_ident())

    provider = TracerProvider()
    provider.add_span_processor(Recording())
    exporter = OpenTelemetryAnalyticsExporter(tracer_provider=provider)
    result = await exporter.export(list(sample_events(50, seed=2)))
    assert result.success and threads
    assert threading.get_ident() not in threads
    provider.shutdown()


def test_recipe_3_builds_reader_urls_with_or_without_a_query_string():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "recipe_3_postgres_export.py"
    spec = importlib.util.spec_from_file_location("recipe_3", path)
    assert spec is not None and spec.loader is not None
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    plain = recipe.with_params("postgresql://u@h:5432/db", schema="s", table="t")
    assert plain == "postgresql://u@h:5432/db?schema=s&table=t"
    tls = recipe.with_params("postgresql://u@h/db?sslmode=require", schema="s")
    assert tls == "postgresql://u@h/db?sslmode=require&schema=s"
    reader = AnalyticsReader.from_url(recipe.with_params(tls, table="t"))
    assert (reader.schema, reader.table) == ("s", "t") and "sslmode=require" in reader.dsn
