"""Analytics export throughput and the cost of ``emit()``.

    python benchmarks/analytics_export.py [--events 200000] [--dsn postgresql://...] [--quick]

Measures, on realistic event traffic (``victor.analytics.sample``):
  * ``emit()``: nanoseconds per event on the chat hot path (a list append);
  * SQLite: the exporter alone (batches of 1000) and end to end through the coordinator;
  * PostgreSQL: COPY + staging table vs ``unnest`` vs ``executemany``, by batch size, and
    end to end through the coordinator (skipped when the server is unreachable);
  * JSON encoding with and without orjson (the stdlib fallback).
Each throughput is the best of ``--repeat`` runs (default 3), each on a fresh database: on
a shared machine the best run is the one least disturbed by other processes.
Prints a Markdown section for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from victor.agent.coordinators.analytics_coordinator import AnalyticsCoordinator
from victor.analytics import events as ev
from victor.analytics.exporters.base import BaseAnalyticsExporter, BatchExportResult
from victor.analytics.exporters.postgres import PostgreSQLAnalyticsExporter
from victor.analytics.exporters.sqlite import SQLiteAnalyticsExporter
from victor.analytics.sample import sample_events


class Null(BaseAnalyticsExporter):
    async def export(self, events):
        return BatchExportResult(success=True, exported_count=len(events))


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, {platform.system()} {platform.release()}"
    )


async def bench_emit(n: int) -> tuple[float, float]:
    """ns per emit(): median of 5 runs; and the cost of checking ``enabled``."""

    async def run() -> float:
        coord = AnalyticsCoordinator([Null()], spool=False, batch_size=1000, max_queue=10 * n)
        events = list(sample_events(n, seed=1))
        coord.emit(events[0])  # starts the background task
        gc.disable()
        start = time.perf_counter_ns()
        for event in events:
            coord.emit(event)
        elapsed = time.perf_counter_ns() - start
        gc.enable()
        await coord.aclose()
        return elapsed / n

    per_event = statistics.median([await run() for _ in range(5)])
    coord = AnalyticsCoordinator([Null()], spool=False)
    start = time.perf_counter_ns()
    for _ in range(n):
        _ = coord.enabled
    return per_event, (time.perf_counter_ns() - start) / n


async def best(repeat: int, measure) -> float:
    """The best of ``repeat`` runs of ``await measure()``."""
    return max([await measure() for _ in range(repeat)])


async def exporter_rate(exporter, events, batch: int) -> float:
    await exporter.export(events[:1])  # connect, create the schema
    start = time.perf_counter()
    for i in range(1, len(events), batch):
        result = await exporter.export(events[i : i + batch])
        assert result.success, result.error
    return (len(events) - 1) / (time.perf_counter() - start)


async def end_to_end(exporter, events, tmp: Path) -> float:
    """Emit as fast as a busy process would (yielding every 1000 events) and time until
    everything is stored."""
    coord = AnalyticsCoordinator(
        [exporter], batch_size=1000, max_queue=len(events) + 1, spool_dir=tmp / "spool"
    )
    start = time.perf_counter()
    for i in range(0, len(events), 1000):
        for event in events[i : i + 1000]:
            coord.emit(event)
        await asyncio.sleep(0)
    await coord.flush()
    rate = len(events) / (time.perf_counter() - start)
    stats = coord.stats
    await coord.aclose()
    assert stats.dropped == 0 and stats.exporters[exporter.name or type(exporter).__name__]
    return rate


def encode_rate(events, use_orjson: bool) -> float:
    saved = ev._orjson_dumps
    if not use_orjson:
        ev._orjson_dumps = None
    try:
        start = time.perf_counter()
        for event in events:
            ev.encode_row(event)
        return len(events) / (time.perf_counter() - start)
    finally:
        ev._orjson_dumps = saved


async def pg_reachable(dsn: str) -> bool:
    try:
        import asyncpg

        conn = await asyncpg.connect(dsn, timeout=3)
        await conn.close()
        return True
    except Exception:
        return False


async def main(args: argparse.Namespace) -> None:
    n = args.events
    events = list(sample_events(n, seed=7))
    lines = [
        "## Analytics",
        "",
        f"Date 2026-11-25. Machine: {machine()}.",
        f"Traffic: {n:,} events of realistic chat turns (`victor.analytics.sample`), "
        f"`python benchmarks/analytics_export.py --events {n}`; best of {args.repeat} runs.",
        "",
        "| measurement | result |",
        "| --- | --- |",
    ]
    per_emit, per_enabled = await bench_emit(min(n, 200_000))
    lines.append(f"| `emit()` per event (hot path) | {per_emit:.0f} ns |")
    lines.append(f"| `enabled` check | {per_enabled:.0f} ns |")
    sample = events[:50_000]
    with_orjson = encode_rate(sample, True)
    lines.append(f"| row encoding, orjson | {with_orjson:,.0f} events/s |")
    lines.append(f"| row encoding, stdlib json | {encode_rate(sample, False):,.0f} events/s |")
    print("\n".join(lines), flush=True)

    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        counter = iter(range(1_000_000))

        def fresh_db() -> SQLiteAnalyticsExporter:
            return SQLiteAnalyticsExporter(tmp / f"db{next(counter)}.db")

        def report(label: str, rate: float) -> None:
            row = f"| {label} | {rate:,.0f} events/s |"
            print(row, flush=True)
            lines.append(row)

        async def sqlite_alone() -> float:
            return await exporter_rate(fresh_db(), events, 1000)

        async def sqlite_e2e() -> float:
            return await end_to_end(fresh_db(), events, tmp / f"s{next(counter)}")

        async def sqlite_e2e_stdlib() -> float:
            ev._orjson_dumps, saved = None, ev._orjson_dumps
            try:
                return await sqlite_e2e()
            finally:
                ev._orjson_dumps = saved

        report("SQLite exporter alone, batches of 1000", await best(args.repeat, sqlite_alone))
        report(
            "SQLite end to end (emit -> coordinator -> file)", await best(args.repeat, sqlite_e2e)
        )
        report(
            "SQLite end to end, stdlib json (no orjson)",
            await best(args.repeat, sqlite_e2e_stdlib),
        )
        if await pg_reachable(args.dsn):
            import asyncpg

            admin = await asyncpg.connect(args.dsn)

            async def in_schema(run) -> float:
                schema = f"victor_bench_{uuid.uuid4().hex[:8]}"
                try:
                    return await run(schema)
                finally:
                    await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

            try:
                batches = (1000,) if args.quick else (500, 2000, 5000)
                for method in ("copy", "unnest", "executemany"):
                    for batch in batches:

                        async def alone(schema: str, method=method, batch=batch) -> float:
                            exporter = PostgreSQLAnalyticsExporter(
                                args.dsn, schema=schema, method=method
                            )
                            try:
                                return await exporter_rate(exporter, events, batch)
                            finally:
                                await exporter.shutdown()

                        rate = await best(args.repeat, lambda alone=alone: in_schema(alone))
                        report(f"PostgreSQL `{method}`, batches of {batch}", rate)

                async def e2e(schema: str) -> float:
                    exporter = PostgreSQLAnalyticsExporter(args.dsn, schema=schema)
                    rate = await end_to_end(exporter, events, tmp / f"s{next(counter)}")
                    table = f'"{schema}".victor_analytics_events'
                    assert await admin.fetchval(f"SELECT COUNT(*) FROM {table}") == n
                    return rate

                rate = await best(args.repeat, lambda: in_schema(e2e))
                report("PostgreSQL end to end (emit -> coordinator -> COPY)", rate)
                version = await admin.fetchval("SHOW server_version")
                lines.append(f"\nPostgreSQL {version} on the same machine (TCP to 127.0.0.1).")
            finally:
                await admin.close()
        else:
            lines.append(f"\nPostgreSQL not reachable at {args.dsn}: skipped.")
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument(
        "--dsn",
        default=os.environ.get("VICTOR_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--quick", action="store_true", help="one batch size per method")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best)")
    asyncio.run(main(parser.parse_args(sys.argv[1:])))
