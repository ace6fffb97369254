"""Reports over the SQLite store (PostgreSQL parity is in test_analytics_postgres.py), and
the ``victor analytics`` command."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from victor.analytics import AnalyticsReader, SQLiteAnalyticsExporter
from victor.analytics.events import INPUT_TOKENS, MODEL, OUTPUT_TOKENS
from victor.analytics.reports import PostgresReader, SQLiteReader, parse_duration, parse_since
from victor.cli.analytics import app
from victor.protocols import AnalyticsEvent

NOW = datetime.now(UTC).replace(microsecond=0)


def ev(kind: str, data: dict, minutes_ago: float = 5, **fields) -> AnalyticsEvent:
    return AnalyticsEvent.model_construct(
        type=kind,
        data=data,
        timestamp=NOW - timedelta(minutes=minutes_ago),
        session_id=fields.pop("session_id", "acme:s1"),
        **fields,
    )


def known_events() -> list[AnalyticsEvent]:
    events = [ev("llm_request", {MODEL: "model-a", "latency_ms": 10.0 * i}) for i in range(1, 11)]
    for _ in range(3):
        usage = {MODEL: "model-a", INPUT_TOKENS: 100, OUTPUT_TOKENS: 10, "cost_usd": 0.01}
        events.append(ev("token_usage", usage, variant="control", experiment="e1"))
    for _ in range(2):
        usage = {MODEL: "model-b", INPUT_TOKENS: 50, OUTPUT_TOKENS: 5, "cost_usd": None}
        events.append(ev("token_usage", usage, variant="treatment", experiment="e1"))
    for i in range(4):
        events.append(ev("tool_call", {"tool": "search", "duration_ms": 5.0, "is_error": i == 0}))
    events.append(ev("error", {"error_type": "Boom", "stage": "llm"}, session_id="globex:s2"))
    for latency in (100.0, 200.0, 300.0, 400.0):
        events.append(ev("chat_complete", {MODEL: "model-a", "latency_ms": latency}))
    events.append(ev("chat_complete", {"latency_ms": 9999.0}, minutes_ago=3 * 24 * 60))  # old
    return events


@pytest.fixture
async def db(tmp_path):
    path = tmp_path / "analytics.db"
    exporter = SQLiteAnalyticsExporter(path)
    assert (await exporter.export(known_events())).success
    await exporter.shutdown()
    return path


async def test_summary_by_model(db):
    rows = {r.key: r for r in await AnalyticsReader.from_url(f"sqlite://{db}").summary("24h")}
    a = rows[("model-a",)]
    assert (a.requests, a.turns, a.input_tokens, a.output_tokens) == (10, 4, 300, 30)
    assert a.cost_usd == pytest.approx(0.03) and a.unpriced == 0
    assert (a.latency_p50_ms, a.latency_p95_ms, a.latency_p99_ms) == (50.0, 100.0, 100.0)
    assert a.latency_avg_ms == pytest.approx(55.0)
    b = rows[("model-b",)]
    # Nothing of model-b is priced: its cost is unknown (None), not $0.
    assert b.unpriced == 2 and b.cost_usd is None and b.total_tokens == 110
    none = rows[(None,)]  # tool calls and errors carry no model
    assert none.tool_calls == 4 and none.errors == 2 and none.error_rate == pytest.approx(2 / 5)


async def test_summary_by_tool_tenant_and_variant(db):
    reader = SQLiteReader(db)
    tools = {r.key: r for r in await reader.summary("24h", by="tool")}
    search = tools[("search",)]
    assert search.tool_calls == 4 and search.errors == 1 and search.error_rate == 0.25
    assert search.latency_p50_ms == 5.0
    tenants = {r.key: r.events for r in await reader.summary("24h", by="tenant")}
    assert tenants == {("acme",): 23, ("globex",): 1}
    variants = {r.key: r for r in await reader.summary("24h", by=["experiment", "variant"])}
    assert variants[("e1", "control")].cost_usd == pytest.approx(0.03)
    assert variants[("e1", "treatment")].unpriced == 2


async def test_totals_buckets_and_window(db):
    reader = SQLiteReader(db)
    total = await reader.totals("24h")
    assert total.events == 24 and total.turns == 4
    assert (total.latency_p50_ms, total.latency_p99_ms) == (200.0, 400.0)  # turn latency
    assert total.errors == 2 and total.error_rate == pytest.approx(2 / 15)
    assert (await reader.totals("7d")).events == 25
    assert (await reader.totals("1m")).events == 0
    series = await reader.summary("4d", by="bucket", bucket="1d")
    assert sum(r.events for r in series) == 25
    assert all(isinstance(r.key[0], datetime) for r in series)
    assert [r.key for r in series] == sorted(r.key for r in series)


async def test_reader_errors_are_clear(tmp_path, db):
    with pytest.raises(FileNotFoundError, match="no analytics database"):
        await SQLiteReader(tmp_path / "missing.db").summary()
    with pytest.raises(ValueError, match="cannot group by"):
        await SQLiteReader(db).summary(by="colour")
    with pytest.raises(LookupError, match="no table"):
        await SQLiteReader(db, table="other").summary()


def test_from_url_and_parsing():
    pg = AnalyticsReader.from_url("postgresql://u@h:5/db?schema=s1&table=t1&sslmode=disable")
    assert isinstance(pg, PostgresReader) and (pg.schema, pg.table) == ("s1", "t1")
    assert "schema" not in pg.dsn and "sslmode=disable" in pg.dsn
    assert isinstance(AnalyticsReader.from_url("/tmp/a.db"), SQLiteReader)
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("2w") == timedelta(days=14)
    now = datetime(2026, 11, 25, tzinfo=UTC)
    assert parse_since("24h", now) == now - timedelta(hours=24)
    assert parse_since("2026-11-01", now) == datetime(2026, 11, 1, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_cli_summary_table_and_json(db):
    runner = CliRunner()
    result = runner.invoke(app, ["--db", str(db), "--since", "24h"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "model-a" in result.output and "model-b" in result.output
    assert "unpriced" in result.output
    result = runner.invoke(app, ["summary", "--db", str(db), "--by", "tool", "--json"])
    rows = json.loads(result.output)
    assert {tuple(r["key"]) for r in rows} >= {("search",), (None,)}
    assert rows[-1]["key"] == [] and rows[-1]["events"] == 24


def test_cli_errors_exit_non_zero(tmp_path, db):
    runner = CliRunner()
    missing = runner.invoke(app, ["--db", str(tmp_path / "nope.db")])
    assert missing.exit_code == 2 and "no analytics database" in missing.stderr
    bad = runner.invoke(app, ["--db", str(db), "--by", "colour"])
    assert bad.exit_code == 2 and "cannot group by" in bad.stderr


def test_cli_prices_and_outbox(tmp_path):
    runner = CliRunner()
    prices = tmp_path / "p.json"
    prices.write_text(json.dumps({"models": {"house-model": {"input": 1, "output": 2}}}))
    args = ["prices", "--file", str(prices), "--model", "gpt-4o-mini", "--model", "nope"]
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "house-model" in result.output
    assert "0.15" in result.output and "unpriced" in result.output
    result = runner.invoke(app, ["outbox", "--path", str(tmp_path / "outbox.db")])
    assert result.exit_code == 0 and "nothing waits" in result.output


def test_cli_shows_an_unpriced_cost_as_unknown_not_zero(db):
    runner = CliRunner()
    result = runner.invoke(app, ["--db", str(db), "--json"])
    rows = {tuple(r["key"]): r for r in json.loads(result.output)}
    assert rows[("model-b",)]["cost_usd"] is None and rows[("model-b",)]["unpriced"] == 2
    assert rows[("model-a",)]["cost_usd"] == pytest.approx(0.03)
    table = runner.invoke(app, ["--db", str(db), "--by", "variant"], env={"COLUMNS": "200"})
    [treatment] = [line for line in table.output.splitlines() if "treatment" in line]
    assert "0.0000" not in treatment and " - " in treatment


def test_cli_shows_a_small_cost_with_significant_digits_not_as_zero():
    from victor.cli.analytics import _fmt_cost

    assert _fmt_cost(0.0042, 2, 0) == "0.0042"
    assert _fmt_cost(0.000012345, 2, 0) == "0.000012"
    assert _fmt_cost(0.0263, 2, 0) == "0.03"
    assert _fmt_cost(0.0, 2, 0) == "0.00"  # priced, and free
    assert _fmt_cost(0.004, 2, 3) == "0.0040+"  # a lower bound: some calls unpriced
    assert _fmt_cost(None, 2, 1) == "-"


async def test_naive_until_is_utc_like_since(db):
    """In a time zone ahead of UTC a naive ``until`` read as local time would end the
    window hours early."""
    import os
    import time

    saved = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Tokyo"
    time.tzset()
    try:
        reader = SQLiteReader(db)
        naive_now = datetime.now(UTC).replace(tzinfo=None)
        aware = await reader.totals(since=naive_now - timedelta(hours=1), until=datetime.now(UTC))
        naive = await reader.totals(since=naive_now - timedelta(hours=1), until=naive_now)
        text = await reader.totals(since="1h", until=naive_now.isoformat())
        assert aware.events == naive.events == text.events == 24
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()
