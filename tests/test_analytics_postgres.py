"""The PostgreSQL exporter and reader against the real server: migrations, idempotency,
malformed events, connections cut mid-run, a killed process's outbox delivered at the next
start.

Each test works in its own schema, dropped at the end. Skips when the server is down,
fails instead with VICTOR_REQUIRE_SERVICES=1 (see conftest.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import UTC, datetime

import pytest

if os.environ.get("VICTOR_REQUIRE_SERVICES") == "1":
    import asyncpg  # required: a missing driver fails, it does not skip
else:
    asyncpg = pytest.importorskip("asyncpg", reason="asyncpg (the postgres extra) is missing")

from sample_traffic import sample_events
from victor.agent.coordinators.analytics_coordinator import AnalyticsCoordinator
from victor.analytics import (
    AnalyticsReader,
    PostgreSQLAnalyticsExporter,
    SQLiteAnalyticsExporter,
)
from victor.protocols import AnalyticsEvent

pytestmark = pytest.mark.postgres
TABLE = "victor_analytics_events"


@pytest.fixture
async def pg(postgres_dsn):
    """(dsn, schema, admin connection); the schema is dropped afterwards."""
    schema = f"victor_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(postgres_dsn, timeout=10)
    try:
        yield postgres_dsn, schema, conn
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


async def counts(conn, schema: str) -> tuple[int, int]:
    row = await conn.fetchrow(
        f'SELECT COUNT(*) AS n, COUNT(DISTINCT event_id) AS d FROM "{schema}".{TABLE}'
    )
    return row["n"], row["d"]


def event(i: int = 0, **fields) -> AnalyticsEvent:
    fields.setdefault("data", {"n": i})
    fields.setdefault("session_id", "acme:s")
    return AnalyticsEvent.model_construct(type="feedback", **fields)


async def test_schema_is_created_and_brought_up_to_date(pg):
    dsn, schema, conn = pg
    exporter = PostgreSQLAnalyticsExporter(dsn, schema=schema)
    assert (await exporter.export([event()])).success
    index = f"{schema}.{TABLE}_type_ts"
    assert await conn.fetchval("SELECT to_regclass($1)", index)
    # An older database, without the newest index: a new exporter creates it.
    await conn.execute(f'DROP INDEX "{schema}".{TABLE}_type_ts')
    await exporter.shutdown()
    again = PostgreSQLAnalyticsExporter(dsn, schema=schema)
    assert (await again.export([event(1)])).success
    assert await conn.fetchval("SELECT to_regclass($1)", index)
    assert await counts(conn, schema) == (2, 2)
    # Dropped under a running exporter: that export fails, the next one creates it again.
    await conn.execute(f'DROP TABLE "{schema}".{TABLE}')
    assert not (await again.export([event(2)])).success
    assert (await again.export([event(2)])).success
    assert await counts(conn, schema) == (1, 1)
    await again.shutdown()


async def test_idempotent_on_event_id_not_on_timestamp(pg):
    dsn, schema, conn = pg
    exporter = PostgreSQLAnalyticsExporter(dsn, schema=schema)
    ts = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    same_instant = [event(i, timestamp=ts) for i in range(3)]  # distinct events, one instant
    assert (await exporter.export(same_instant)).exported_count == 3
    assert (await exporter.export([*same_instant, same_instant[0]])).success  # replayed twice
    assert await counts(conn, schema) == (3, 3)
    row = await conn.fetchrow(f'SELECT * FROM "{schema}".{TABLE} LIMIT 1')
    assert row["tenant_id"] == "acme" and row["ts"] == ts
    await exporter.shutdown()


async def test_odd_text_round_trips(pg):
    """Tabs, newlines, backslashes, "\\N" and non-ASCII text are stored as given."""
    dsn, schema, conn = pg
    exporter = PostgreSQLAnalyticsExporter(dsn, schema=schema)
    tricky = "a\tb\\c\nd\re \\N \\. caf\u00e9 \U0001f600"
    e = event(session_id=tricky, variant="", data={"s": tricky, "n": 2**40, "f": 1e-7})
    assert (await exporter.export([e])).success
    row = await conn.fetchrow(f'SELECT session_id, variant, data FROM "{schema}".{TABLE}')
    assert row["session_id"] == tricky and row["variant"] == ""
    assert json.loads(row["data"]) == {"s": tricky, "n": 2**40, "f": 1e-7}
    await exporter.shutdown()


async def test_malformed_events_rejected_one_by_one(pg):
    dsn, schema, conn = pg
    exporter = PostgreSQLAnalyticsExporter(dsn, schema=schema)
    good = [event(i) for i in range(5)]
    bad = [
        event(data={"when": object()}),
        event(data={"text": "nul\x00byte"}),
        event(data={"s": "\ud800"}),
        event(timestamp="yesterday"),
        AnalyticsEvent.model_construct(type=None, data={}),
        event(data=["not", "a", "dict"]),
    ]
    nan = event(data={"latency_ms": float("nan")})
    result = await exporter.export([*good[:2], *bad, nan, *good[2:]])
    assert result.exported_count == 6 and not result.success
    assert sorted(result.rejected_event_ids) == sorted(e.event_id for e in bad)
    assert "not JSON-serialisable" in result.error and "6 event(s) rejected" in result.error
    assert await counts(conn, schema) == (6, 6)
    stored = await conn.fetchval(
        f'SELECT data::text FROM "{schema}".{TABLE} WHERE event_id = $1', nan.event_id
    )
    assert stored == '{"latency_ms": null}'
    await exporter.shutdown()


async def test_rows_refused_by_the_server_are_isolated(pg):
    dsn, schema, conn = pg
    exporter = PostgreSQLAnalyticsExporter(dsn, schema=schema)
    await exporter.export([event()])
    await conn.execute(
        f"ALTER TABLE \"{schema}\".{TABLE} ADD CONSTRAINT no_x CHECK (variant IS DISTINCT FROM 'x')"
    )
    refused = event(variant="x")
    result = await exporter.export([event(1), refused, event(2)])
    assert result.rejected_event_ids == [refused.event_id] and result.exported_count == 2
    assert "refused by PostgreSQL" in result.error
    await exporter.shutdown()


async def test_a_row_asyncpg_cannot_encode_is_isolated(pg, monkeypatch):
    """Defence in depth: a value out of range that got past the encoding fails in asyncpg's
    COPY, on the client; that row alone is refused, the others are stored."""
    from victor.analytics.exporters import postgres

    dsn, schema, conn = pg
    exporter = PostgreSQLAnalyticsExporter(dsn, schema=schema)
    bad = event(9)
    real = postgres.encode_row

    def encode(e):
        row = real(e)
        return (*row[:9], 2**63, *row[10:]) if e is bad else row

    monkeypatch.setattr(postgres, "encode_row", encode)
    result = await exporter.export([event(1), bad, event(2)])
    assert result.rejected_event_ids == [bad.event_id] and result.exported_count == 2
    assert await counts(conn, schema) == (2, 2)
    await exporter.shutdown()


async def test_connections_cut_mid_run_every_event_arrives_once(pg, tmp_path):
    dsn, schema, conn = pg
    app = f"victor-test-{uuid.uuid4().hex[:8]}"
    exporter = PostgreSQLAnalyticsExporter(
        dsn, schema=schema, application_name=app, max_pool_size=2
    )
    coord = AnalyticsCoordinator(
        [exporter],
        outbox_path=tmp_path / "outbox.db",
        batch_size=500,
        flush_interval=0.02,
        retry_backoff=0.01,
        max_backoff=0.2,
    )
    total, worst, kills = 30_000, 0.0, 0
    done = asyncio.Event()

    async def killer() -> None:
        nonlocal kills
        while not done.is_set():
            await asyncio.sleep(0.1)
            kills += len(
                await conn.fetch(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = $1 AND pid <> pg_backend_pid()",
                    app,
                )
            )

    killing = asyncio.create_task(killer())
    events = list(sample_events(total, seed=3))
    for start in range(0, total, 300):
        for e in events[start : start + 300]:
            t0 = time.perf_counter()
            coord.emit(e)
            worst = max(worst, time.perf_counter() - t0)
        await asyncio.sleep(0.005)
    await coord.flush()
    done.set()
    await killing
    await coord.aclose()
    assert kills >= 3 and exporter.pool_resets >= 1  # the cuts really happened
    assert await counts(conn, schema) == (total, total)
    assert worst < 0.05  # emit never waited for the database
    assert coord.stats.dropped == 0


async def test_database_down_then_killed_process_replayed_at_next_start(pg, tmp_path):
    dsn, schema, conn = pg
    script = textwrap.dedent(
        """
        import asyncio, os, signal, sys
        from victor.agent.coordinators.analytics_coordinator import AnalyticsCoordinator
        from victor.analytics import PostgreSQLAnalyticsExporter
        from victor.protocols import AnalyticsEvent

        async def refuse():
            raise ConnectionRefusedError("the database is down")

        async def main():
            # The same database as the next process, unreachable from this one.
            down = PostgreSQLAnalyticsExporter(sys.argv[3], schema=sys.argv[2], name="pg")
            down._get_pool = refuse
            coord = AnalyticsCoordinator([down], outbox_path=sys.argv[1], batch_size=100,
                                         flush_interval=0.01, max_retries=0)
            for i in range(2000):
                coord.emit(AnalyticsEvent.model_construct(type="feedback", data={"n": i}))
            while coord.stats.exporters["pg"].outboxed < 2000:
                await asyncio.sleep(0.01)
            print("outboxed", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

        asyncio.run(main())
        """
    )
    outbox = tmp_path / "outbox.db"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, str(outbox), schema, dsn, stdout=subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == -signal.SIGKILL and b"outboxed" in out
    coord = AnalyticsCoordinator(
        [PostgreSQLAnalyticsExporter(dsn, schema=schema, name="pg")], outbox_path=outbox
    )
    await coord.aclose()
    assert await counts(conn, schema) == (2000, 2000)
    assert coord.stats.exporters["pg"].exported == 2000


async def test_reader_gives_the_same_numbers_as_sqlite(pg, tmp_path):
    dsn, schema, _ = pg
    db = tmp_path / "a.db"
    coord = AnalyticsCoordinator(
        [SQLiteAnalyticsExporter(db), PostgreSQLAnalyticsExporter(dsn, schema=schema)],
        outbox_path=tmp_path / "outbox.db",
    )
    for e in sample_events(3000, seed=9):
        coord.emit(e)
    await coord.aclose()
    sqlite_reader = AnalyticsReader.from_url(f"sqlite://{db}")
    pg_reader = AnalyticsReader.from_url(f"{dsn}?schema={schema}")
    async with pg_reader:
        for by in ("model", "tool", "tenant", ("experiment", "variant"), "bucket"):
            a = await sqlite_reader.summary("2h", by=by, bucket="10m")
            b = await pg_reader.summary("2h", by=by, bucket="10m")
            assert [r.key for r in a] == [r.key for r in b]
            for x, y in zip(a, b, strict=True):
                assert (x.events, x.requests, x.errors, x.total_tokens, x.unpriced) == (
                    y.events,
                    y.requests,
                    y.errors,
                    y.total_tokens,
                    y.unpriced,
                )
                assert x.cost_usd == pytest.approx(y.cost_usd)
                assert x.latency_p95_ms == pytest.approx(y.latency_p95_ms)
        total = await pg_reader.totals("2h")
        assert total.events == 3000


async def test_a_role_without_create_privilege_writes_to_a_migrated_table(pg):
    """The DBA created and migrated the schema; the application role may only write:
    an up-to-date table needs no DDL (and no CREATE on the database)."""
    dsn, schema, conn = pg
    from victor.analytics.exporters.postgres import migrate_postgres

    role = f"victor_app_{uuid.uuid4().hex[:8]}"
    await conn.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        await migrate_postgres(conn, schema, TABLE)
        await conn.execute(
            f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"; '
            f'GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"'
        )
        can_create = "SELECT has_database_privilege($1, current_database(), 'CREATE')"
        assert not await conn.fetchval(can_create, role)  # the PostgreSQL 15 default
        app_dsn = dsn.replace("postgres@", f"{role}@", 1)
        exporter = PostgreSQLAnalyticsExporter(app_dsn, schema=schema)
        result = await exporter.export([event(1)])
        await exporter.shutdown()
        assert result.success, result.error
        assert await counts(conn, schema) == (1, 1)
    finally:
        await conn.execute(f'DROP OWNED BY "{role}"; DROP ROLE "{role}"')


async def test_migrate_false_runs_no_ddl_and_works_once_the_table_exists(pg):
    dsn, schema, conn = pg
    exporter = PostgreSQLAnalyticsExporter(dsn, schema=schema, migrate=False)
    result = await exporter.export([event(1)])
    assert not result.success and "does not exist" in result.error
    assert not result.failed_event_ids  # nothing stored: the whole batch is sent again
    assert await conn.fetchval("SELECT to_regnamespace($1)", schema) is None  # no DDL
    # Once a DBA created it, the same exporter works.
    from victor.analytics.exporters.postgres import migrate_postgres

    await migrate_postgres(conn, schema, TABLE)
    assert (await exporter.export([event(2)])).success
    await exporter.shutdown()
    assert await counts(conn, schema) == (1, 1)


def test_destination_and_table_names_are_checked_up_front():
    exporter = PostgreSQLAnalyticsExporter(
        "postgresql://app:s3cret@db.example:5433/prod?sslmode=require&password=x",
        schema="analytics",
    )
    assert "s3cret" not in exporter.destination and "password" not in exporter.destination
    assert exporter.destination == (
        "postgresql://app@db.example:5433/prod?sslmode=require#analytics.victor_analytics_events"
    )
    other = PostgreSQLAnalyticsExporter("postgresql://app@db.example:5433/staging")
    assert other.destination != exporter.destination
    longest = "t" * 55  # + "_type_ts" = 63 characters
    PostgreSQLAnalyticsExporter("postgresql://h/db", table=longest)
    with pytest.raises(ValueError, match="at most 55 characters"):
        PostgreSQLAnalyticsExporter("postgresql://h/db", table=longest + "x")
    with pytest.raises(ValueError, match="at most 55 characters"):
        SQLiteAnalyticsExporter("/tmp/never-created.db", table=longest + "x")


async def test_reader_serves_concurrent_summaries(pg):
    dsn, schema, _ = pg
    exporter = PostgreSQLAnalyticsExporter(dsn, schema=schema)
    await exporter.export(list(sample_events(500, seed=4)))
    await exporter.shutdown()
    async with AnalyticsReader.from_url(f"{dsn}?schema={schema}") as reader:
        await reader.totals()  # connected: the calls below share the reader's connection(s)
        by_model, by_tool, total = await asyncio.gather(
            reader.summary(by="model"), reader.summary(by="tool"), reader.totals()
        )
    assert sum(r.events for r in by_model) == sum(r.events for r in by_tool) == total.events
