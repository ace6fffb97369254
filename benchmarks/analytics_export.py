"""Analytics export throughput, the cost of ``emit()`` and the event loop's stalls.

    python benchmarks/analytics_export.py [--events 200000] [--dsn postgresql://...]
                                          [--repeat 5] [--quick]

Measures, on realistic event traffic (``tests/sample_traffic.py``):
  * ``emit()``: nanoseconds per event on the chat hot path, garbage collector on, default
    coordinator settings, in bursts of 1000 events with the loop running in between;
  * SQLite: the exporter alone (batches of 1000) and end to end through a coordinator with
    its *default* settings, twice: a burst that fits the queue bound (``max_queue``,
    100,000 events: the sustained rate) and a burst of twice that (what the background
    task cannot take in time is dropped and counted: the number is shown);
  * PostgreSQL: the exporter alone (COPY into a staging table + ``INSERT ... ON CONFLICT
    DO NOTHING``) by batch size, and end to end with default settings, through the outbox
    (skipped when the server is unreachable);
  * the worst event-loop stall while the end-to-end exports run (a 1 ms ticker);
  * row encoding.
Each figure is the median of ``--repeat`` runs (default 5), each on a fresh database, with
the spread (lowest - highest run) beside it. Prints a Markdown table for
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gc
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from victor.agent.coordinators.analytics_coordinator import AnalyticsCoordinator
from victor.analytics import encoding as ev
from victor.analytics.exporters.base import BaseAnalyticsExporter
from victor.analytics.exporters.postgres import PostgreSQLAnalyticsExporter
from victor.analytics.exporters.sqlite import SQLiteAnalyticsExporter
from victor.protocols import ExportResult

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from sample_traffic import sample_events  # the tests' traffic generator


class Null(BaseAnalyticsExporter):
    takes_records = True

    async def export(self, events):  # type: ignore[no-untyped-def]
        return ExportResult(success=True, exported_count=len(events))


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


class Runs:
    """Values of repeated runs: the median, and the spread from the lowest to the highest."""

    def __init__(self, values: list[float]) -> None:
        self.values = values

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def fmt(self, unit: str, digits: int = 0) -> str:
        low, high = min(self.values), max(self.values)
        return (
            f"{self.median:,.{digits}f} {unit} "
            f"({low:,.{digits}f} - {high:,.{digits}f}, {len(self.values)} runs)"
        )


async def repeat(n: int, measure: Callable[[], Awaitable[float]]) -> Runs:
    return Runs([await measure() for _ in range(n)])


class LoopLag:
    """The worst delay of a 1 ms timer: how long the loop was kept from other work."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            self.worst = max(self.worst, time.perf_counter() - start - 0.001)

    def __enter__(self) -> LoopLag:
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def bench_emit(n: int, tmp: Path, runs: int) -> tuple[Runs, float]:
    """ns per emit() with default settings (GC on), in bursts of 1000; and ``enabled``."""

    async def run() -> float:
        coord = AnalyticsCoordinator([Null()], outbox_path=tmp / f"emit-{uuid.uuid4().hex}.db")
        events = list(sample_events(n, seed=1))
        coord.emit(events[0])  # starts the background task
        elapsed = 0
        for i in range(1, n, 1000):
            burst = events[i : i + 1000]
            start = time.perf_counter_ns()
            for event in burst:
                coord.emit(event)
            elapsed += time.perf_counter_ns() - start
            await asyncio.sleep(0)
        await coord.aclose()
        return elapsed / (n - 1)

    per_event = await repeat(runs, run)
    coord = AnalyticsCoordinator([Null()])
    start = time.perf_counter_ns()
    for _ in range(n):
        _ = coord.enabled
    return per_event, (time.perf_counter_ns() - start) / n


async def exporter_rate(exporter: Any, events: list[Any], batch: int) -> float:
    await exporter.export(events[:1])  # connect, create the schema
    start = time.perf_counter()
    for i in range(1, len(events), batch):
        result = await exporter.export(events[i : i + batch])
        assert result.success, result.error
    return (len(events) - 1) / (time.perf_counter() - start)


DROPPED: list[int] = []


async def end_to_end(exporter: Any, events: list[Any], tmp: Path, lags: list[float]) -> float:
    """Default coordinator settings. Emit as fast as a busy process would (yielding every
    1000 events) and time until every event is stored (or dropped: counted in DROPPED)."""
    name = exporter.name or type(exporter).__name__
    coord = AnalyticsCoordinator([exporter], outbox_path=tmp / "outbox.db")
    with LoopLag() as lag:
        start = time.perf_counter()
        for i in range(0, len(events), 1000):
            for event in events[i : i + 1000]:
                coord.emit(event)
            await asyncio.sleep(0)
        await coord.flush()
        while (stats := coord.stats).exporters[name].exported + stats.dropped < len(events):  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        rate = stats.exporters[name].exported / (time.perf_counter() - start)
    lags.append(lag.worst)
    DROPPED.append(stats.dropped)
    await coord.aclose()
    return rate


def encode_rate(events: list[Any]) -> float:
    start = time.perf_counter()
    for event in events:
        ev.encode_row(event)
    return len(events) / (time.perf_counter() - start)


async def pg_reachable(dsn: str) -> bool:
    try:
        import asyncpg

        conn = await asyncpg.connect(dsn, timeout=3)
        await conn.close()
        return True
    except Exception:
        return False


async def main(args: argparse.Namespace) -> None:
    n, runs = args.events, args.repeat
    events = list(sample_events(n, seed=7))
    # The benchmark's own events are not the heap of a chat service: keep the collector from
    # rescanning them (a full collection over them alone stalls the loop for ~200 ms).
    gc.collect()
    gc.freeze()
    bound = AnalyticsCoordinator.DEFAULT_MAX_QUEUE
    within, burst = events[: min(n, bound)], events[: min(n, 2 * bound)]
    lines = [
        "## Analytics",
        "",
        f"Date {datetime.date.today().isoformat()}. Machine: {machine()}.",
        f"Traffic: {n:,} events of realistic chat turns (`tests/sample_traffic.py`), "
        f"`python benchmarks/analytics_export.py --events {n} --repeat {runs}`; "
        "median of the runs, spread (lowest - highest) in brackets.",
        "",
        "| measurement | result |",
        "| --- | --- |",
    ]

    def report(label: str, value: str) -> None:
        row = f"| {label} | {value} |"
        print(row, flush=True)
        lines.append(row)

    print("\n".join(lines), flush=True)
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        per_emit, per_enabled = await bench_emit(min(n, 200_000), tmp, runs)
        report("`emit()` per event (defaults, GC on, bursts of 1000)", per_emit.fmt("ns"))
        report("`enabled` check", f"{per_enabled:.0f} ns")
        sample = events[:50_000]
        report(
            "row encoding", (await repeat(runs, _sync(lambda: encode_rate(sample)))).fmt("events/s")
        )
        counter = iter(range(1_000_000))

        def fresh_db() -> SQLiteAnalyticsExporter:
            return SQLiteAnalyticsExporter(tmp / f"db{next(counter)}.db")

        sqlite_lags: list[float] = []

        async def sqlite_alone() -> float:
            return await exporter_rate(fresh_db(), events, 1000)

        async def sqlite_e2e(traffic: list[Any] = within, lags: list[float] = sqlite_lags) -> float:
            return await end_to_end(fresh_db(), traffic, tmp / f"s{next(counter)}", lags)

        report(
            "SQLite exporter alone, batches of 1000",
            (await repeat(runs, sqlite_alone)).fmt("events/s"),
        )
        report(
            f"**SQLite end to end**, default settings, burst of {len(within):,} "
            "(emit -> coordinator -> file)",
            (await repeat(runs, sqlite_e2e)).fmt("events/s"),
        )
        report("worst loop stall during it", _ms(sqlite_lags))
        burst_lags: list[float] = []
        DROPPED.clear()
        report(
            f"SQLite end to end, burst of {len(burst):,} (beyond the queue), stored events/s",
            (await repeat(runs, lambda: sqlite_e2e(burst, burst_lags))).fmt("events/s"),
        )
        report("worst loop stall during it", _ms(burst_lags))
        report("events dropped (full queue, counted)", ", ".join(f"{d:,}" for d in DROPPED))
        if await pg_reachable(args.dsn):
            await bench_postgres(args, events, (within, burst), tmp, runs, report, lines, counter)
        else:
            lines.append(f"\nPostgreSQL not reachable at {args.dsn}: skipped.")
    print("\n" + "\n".join(lines))


def _ms(lags: list[float]) -> str:
    return Runs([lag * 1000 for lag in lags]).fmt("ms", 1)


def _sync(fn: Callable[[], float]) -> Callable[[], Awaitable[float]]:
    async def run() -> float:
        return fn()

    return run


async def bench_postgres(
    args: argparse.Namespace,
    events: list[Any],
    bursts: tuple[list[Any], list[Any]],
    tmp: Path,
    runs: int,
    report: Callable[[str, str], None],
    lines: list[str],
    counter: Any,
) -> None:
    import asyncpg

    admin = await asyncpg.connect(args.dsn)

    async def in_schema(run: Callable[[str], Awaitable[float]]) -> float:
        schema = f"victor_bench_{uuid.uuid4().hex[:8]}"
        try:
            return await run(schema)
        finally:
            await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    try:
        batches = (1000,) if args.quick else (500, 1000, 2000, 5000)
        for batch in batches:

            async def alone(schema: str, batch: int = batch) -> float:
                exporter = PostgreSQLAnalyticsExporter(args.dsn, schema=schema)
                try:
                    return await exporter_rate(exporter, events, batch)
                finally:
                    await exporter.shutdown()

            rates = await repeat(runs, lambda alone=alone: in_schema(alone))
            report(f"PostgreSQL exporter alone, batches of {batch}", rates.fmt("events/s"))

        for traffic, label in (
            (
                bursts[0],
                "**PostgreSQL end to end**, default settings, burst of {:,} (fits the queue)",
            ),
            (
                bursts[1],
                "PostgreSQL end to end, burst of {:,} (beyond the queue), stored events/s",
            ),
        ):
            lags: list[float] = []
            DROPPED.clear()

            async def e2e(
                schema: str, traffic: list[Any] = traffic, lags: list[float] = lags
            ) -> float:
                exporter = PostgreSQLAnalyticsExporter(args.dsn, schema=schema)
                rate = await end_to_end(exporter, traffic, tmp / f"s{next(counter)}", lags)
                table = f'"{schema}".victor_analytics_events'
                stored = await admin.fetchval(f"SELECT COUNT(*) FROM {table}")
                assert stored == len(traffic) - DROPPED[-1], (stored, DROPPED[-1])
                return rate

            rates = await repeat(runs, lambda e2e=e2e: in_schema(e2e))
            report(label.format(len(traffic)), rates.fmt("events/s"))
            report("worst loop stall during it", _ms(lags))
            report("events dropped (full queue, counted)", ", ".join(f"{d:,}" for d in DROPPED))
        version = await admin.fetchval("SHOW server_version")
        lines.append(f"\nPostgreSQL {version} on the same machine (TCP to 127.0.0.1).")
    finally:
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument(
        "--dsn",
        default=os.environ.get("VICTOR_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--quick", action="store_true", help="one PostgreSQL batch size")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (median)")
    asyncio.run(main(parser.parse_args(sys.argv[1:])))
