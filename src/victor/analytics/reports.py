"""The read side: aggregates over the events table, the same API on SQLite and PostgreSQL.

``AnalyticsReader.from_url(...)`` then ``await reader.summary(since="24h", by="model")``:
counts, tokens, cost, latency percentiles and error rate per model, tool, tenant,
experiment, variant or time bucket. Percentiles are nearest-rank (``percentile_disc``) on
both stores, so both give the same numbers for the same events.

What counts: tokens and cost come from ``token_usage`` events (``unpriced`` counts those
without a price: the cost shown then is a lower bound, never a silent $0; ``cost_usd`` is
None for a group where nothing was priced). Naive datetimes are UTC, for ``since`` and
``until`` alike. Latency is
that of model calls when grouping by model, of tool calls by tool, of chat turns
otherwise. ``error_rate`` = (error events + failed tool calls) / (model calls + tool calls
+ error events).
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from victor.analytics.events import CHAT_COMPLETE, ERROR, LLM_REQUEST, TOKEN_USAGE, TOOL_CALL
from victor.analytics.exporters._schema import DEFAULT_TABLE, ident

DIMENSIONS = {
    "model": "model",
    "tool": "tool",
    "tenant": "tenant_id",
    "experiment": "experiment",
    "variant": "variant",
    "type": "type",
    "session": "session_id",
}
PERCENTILES = (0.5, 0.95, 0.99)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str | timedelta) -> timedelta:
    """``"90s"``, ``"15m"``, ``"24h"``, ``"7d"``, ``"2w"``."""
    if isinstance(value, timedelta):
        return value
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"invalid duration {value!r}: use e.g. 30m, 24h, 7d")
    return timedelta(seconds=float(match[1]) * _UNITS[match[2]])


def parse_since(value: str | timedelta | datetime | None, now: datetime | None = None) -> datetime:
    """The start of a window: a duration back from now, or an ISO date/time."""
    now = now or datetime.now(UTC)
    if value is None:
        return now - timedelta(hours=24)
    if isinstance(value, datetime):
        return _utc(value)
    if isinstance(value, timedelta) or _DURATION.match(value):
        return now - parse_duration(value)
    return _utc(datetime.fromisoformat(value))


def parse_until(value: str | datetime | None, now: datetime | None = None) -> datetime:
    """The end of a window (exclusive): now by default, or an ISO date/time."""
    if value is None:
        return (now or datetime.now(UTC)) + timedelta(seconds=1)
    return _utc(datetime.fromisoformat(value) if isinstance(value, str) else value)


def _utc(value: datetime) -> datetime:
    """A naive datetime is UTC (never local time), as events' timestamps are."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(slots=True)
class SummaryRow:
    """Aggregates of one group; ``key`` holds the values of the ``by`` dimensions."""

    key: tuple[Any, ...]
    events: int = 0
    requests: int = 0
    turns: int = 0
    tool_calls: int = 0
    errors: int = 0
    operations: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float | None = None  # None: nothing in the group was priced
    unpriced: int = 0
    latency_avg_ms: float | None = None
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None

    @property
    def error_rate(self) -> float:
        return self.errors / self.operations if self.operations else 0.0

    @property
    def label(self) -> str:
        return " / ".join(
            v.strftime("%Y-%m-%d %H:%M") if isinstance(v, datetime) else str(v or "-")
            for v in self.key
        )


_AGGREGATES = f"""
    COUNT(*),
    SUM(CASE WHEN type = '{LLM_REQUEST}' THEN 1 ELSE 0 END),
    SUM(CASE WHEN type = '{CHAT_COMPLETE}' THEN 1 ELSE 0 END),
    SUM(CASE WHEN type = '{TOOL_CALL}' THEN 1 ELSE 0 END),
    SUM(CASE WHEN type = '{ERROR}' OR (type = '{TOOL_CALL}' AND is_error) THEN 1 ELSE 0 END),
    SUM(CASE WHEN type IN ('{LLM_REQUEST}', '{TOOL_CALL}', '{ERROR}') THEN 1 ELSE 0 END),
    SUM(CASE WHEN type = '{TOKEN_USAGE}' THEN input_tokens END),
    SUM(CASE WHEN type = '{TOKEN_USAGE}' THEN output_tokens END),
    SUM(CASE WHEN type = '{TOKEN_USAGE}' THEN total_tokens END),
    SUM(CASE WHEN type = '{TOKEN_USAGE}' THEN cost_usd END),
    SUM(CASE WHEN type = '{TOKEN_USAGE}' AND cost_usd IS NULL THEN 1 ELSE 0 END),
    AVG(CASE WHEN type = {{lat}} THEN latency_ms END),
    COUNT(CASE WHEN type = '{TOKEN_USAGE}' THEN cost_usd END)"""


def _latency_type(dims: Sequence[str], latency_of: str | None) -> str:
    if latency_of:
        return latency_of
    if "tool" in dims:
        return TOOL_CALL
    return LLM_REQUEST if "model" in dims else CHAT_COMPLETE


def _dims(by: str | Sequence[str] | None) -> list[str]:
    dims = [by] if isinstance(by, str) else list(by or [])
    for dim in dims:
        if dim not in DIMENSIONS and dim != "bucket":
            raise ValueError(f"cannot group by {dim!r}: use {', '.join([*DIMENSIONS, 'bucket'])}")
    return dims


class AnalyticsReader:
    """Reads an analytics store written by the SQLite or PostgreSQL exporter."""

    dialect = "base"

    def __init__(self, table: str = DEFAULT_TABLE) -> None:
        ident(table)
        self.table = table

    @staticmethod
    def from_url(url: str | Path, *, table: str | None = None) -> AnalyticsReader:
        """``sqlite:///abs/path.db``, a plain file path, or ``postgresql://...``; for
        PostgreSQL ``?schema=NAME&table=NAME`` select where the exporter wrote."""
        text = str(url)
        if text.startswith(("postgresql://", "postgres://")):
            parts = urlsplit(text)
            query = dict(parse_qsl(parts.query))
            schema = query.pop("schema", "public")
            table = table or query.pop("table", DEFAULT_TABLE)
            dsn = urlunsplit(parts._replace(query=urlencode(query)))
            return PostgresReader(dsn, schema=schema, table=table)
        if text.startswith("sqlite://"):
            text = text[len("sqlite://") :]
        return SQLiteReader(Path(text).expanduser(), table=table or DEFAULT_TABLE)

    # -- the public API -------------------------------------------------------------------

    async def summary(
        self,
        since: str | timedelta | datetime | None = "24h",
        until: str | datetime | None = None,
        by: str | Sequence[str] | None = "model",
        *,
        bucket: str | timedelta = "1h",
        latency_of: str | None = None,
    ) -> list[SummaryRow]:
        """One row per group over ``[since, until)``, most events first (time order
        when grouping by ``bucket``)."""
        dims = _dims(by)
        start, end = parse_since(since), parse_until(until)
        seconds = max(1, int(parse_duration(bucket).total_seconds()))
        rows = await self._query(dims, start, end, seconds, _latency_type(dims, latency_of))
        if "bucket" in dims:
            index = dims.index("bucket")
            rows.sort(key=lambda r: (r.key[index], -r.events))
        else:
            rows.sort(key=lambda r: (-r.events, r.label))
        return rows

    async def totals(
        self, since: str | timedelta | datetime | None = "24h", until: str | datetime | None = None
    ) -> SummaryRow:
        rows = await self.summary(since, until, by=None, latency_of=CHAT_COMPLETE)
        return rows[0] if rows else SummaryRow(key=())

    async def timeseries(
        self,
        since: str | timedelta | datetime | None = "24h",
        until: str | datetime | None = None,
        bucket: str | timedelta = "1h",
    ) -> list[SummaryRow]:
        return await self.summary(since, until, by="bucket", bucket=bucket)

    async def aclose(self) -> None:
        """Release the connection."""

    async def __aenter__(self) -> AnalyticsReader:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- per store ------------------------------------------------------------------------

    async def _query(
        self, dims: list[str], start: datetime, end: datetime, seconds: int, lat: str
    ) -> list[SummaryRow]:
        raise NotImplementedError

    def _key_exprs(self, dims: list[str], seconds: int) -> list[str]:
        return [self._bucket(seconds) if d == "bucket" else DIMENSIONS[d] for d in dims]

    def _bucket(self, seconds: int) -> str:
        raise NotImplementedError

    @staticmethod
    def _row(key: tuple[Any, ...], agg: Sequence[Any], pct: Sequence[Any]) -> SummaryRow:
        priced = int(agg[12] or 0)  # COUNT(cost_usd): 0 means no cost is known, not $0
        return SummaryRow(
            key,
            *(int(v or 0) for v in agg[:9]),
            float(agg[9] or 0.0) if priced else None,
            int(agg[10] or 0),
            None if agg[11] is None else float(agg[11]),
            *(None if v is None else float(v) for v in pct),
        )


class SQLiteReader(AnalyticsReader):
    """Reads the SQLite store, from a worker thread (WAL: the exporter keeps writing)."""

    dialect = "sqlite"

    def __init__(self, path: Path, *, table: str = DEFAULT_TABLE) -> None:
        super().__init__(table)
        self.path = path

    def _bucket(self, seconds: int) -> str:
        return f"(CAST(ts / {seconds} AS INTEGER) * {seconds})"

    async def _query(
        self, dims: list[str], start: datetime, end: datetime, seconds: int, lat: str
    ) -> list[SummaryRow]:
        return await asyncio.to_thread(self._run, dims, start, end, seconds, lat)

    def _run(
        self, dims: list[str], start: datetime, end: datetime, seconds: int, lat: str
    ) -> list[SummaryRow]:
        if not self.path.exists():
            raise FileNotFoundError(f"no analytics database at {self.path}")
        keys = self._key_exprs(dims, seconds)
        cols = [f"{expr} AS k{i}" for i, expr in enumerate(keys)]
        group = f"GROUP BY {', '.join(f'k{i}' for i in range(len(keys)))}" if keys else ""
        t = ident(self.table)
        where = "ts >= ? AND ts < ?"
        agg_sql = (
            f"SELECT {', '.join([*cols, _AGGREGATES.format(lat='?')])} "
            f"FROM {t} WHERE {where} {group}"
        )
        partition = f"PARTITION BY {', '.join(keys)}" if keys else ""
        picks = ", ".join(f"MIN(CASE WHEN rn >= {p} * n THEN latency_ms END)" for p in PERCENTILES)
        pct_sql = (
            f"SELECT {', '.join([*(f'k{i}' for i in range(len(keys))), picks])} FROM ("
            f"SELECT {', '.join([*cols, 'latency_ms'])}, "
            f"ROW_NUMBER() OVER ({partition} ORDER BY latency_ms) AS rn, "
            f"COUNT(*) OVER ({partition}) AS n "
            f"FROM {t} WHERE {where} AND type = ? AND latency_ms IS NOT NULL) {group}"
        )
        params = (start.timestamp(), end.timestamp())
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30.0)
        try:
            aggregates = conn.execute(agg_sql, (lat, *params)).fetchall()
            percentiles = {
                tuple(r[: len(keys)]): r[len(keys) :]
                for r in conn.execute(pct_sql, (*params, lat)).fetchall()
            }
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                raise LookupError(f"{self.path} has no table {self.table!r}") from None
            raise
        finally:
            conn.close()
        result = []
        for row in aggregates:
            key = tuple(row[: len(keys)])
            if not row[len(keys)]:
                continue  # COUNT(*) = 0: an empty window without GROUP BY
            pct = percentiles.get(key, (None,) * len(PERCENTILES))
            if "bucket" in dims:
                i = dims.index("bucket")
                key = (*key[:i], datetime.fromtimestamp(key[i], UTC), *key[i + 1 :])
            result.append(self._row(key, row[len(keys) :], pct))
        return result


class PostgresReader(AnalyticsReader):
    """Reads the PostgreSQL store through a small asyncpg pool: concurrent calls (a
    dashboard asking for several summaries at once) each get their own connection."""

    dialect = "postgresql"

    def __init__(
        self, dsn: str, *, schema: str = "public", table: str = DEFAULT_TABLE, max_size: int = 4
    ) -> None:
        super().__init__(table)
        ident(schema)
        self.dsn, self.schema, self.max_size = dsn, schema, max(1, max_size)
        self._pool: Any = None
        self._pool_lock = asyncio.Lock()

    async def _get_pool(self) -> Any:
        async with self._pool_lock:  # one pool, however many calls start at once
            if self._pool is None:
                import asyncpg

                self._pool = await asyncpg.create_pool(
                    self.dsn, min_size=0, max_size=self.max_size, timeout=10
                )
            return self._pool

    def _bucket(self, seconds: int) -> str:
        return f"to_timestamp(floor(extract(epoch FROM ts) / {seconds}) * {seconds})"

    async def _query(
        self, dims: list[str], start: datetime, end: datetime, seconds: int, lat: str
    ) -> list[SummaryRow]:
        import asyncpg

        pool = await self._get_pool()
        keys = self._key_exprs(dims, seconds)
        cols = [f"{expr} AS k{i}" for i, expr in enumerate(keys)]
        group = f"GROUP BY {', '.join(f'k{i}' for i in range(len(keys)))}" if keys else ""
        pct = (
            f"percentile_disc(ARRAY{list(PERCENTILES)}::float8[]) WITHIN GROUP "
            "(ORDER BY latency_ms) FILTER (WHERE type = $3 AND latency_ms IS NOT NULL)"
        )
        sql = (
            f"SELECT {', '.join([*cols, _AGGREGATES.format(lat='$3'), pct])} "
            f"FROM {ident(self.schema)}.{ident(self.table)} "
            f"WHERE ts >= $1 AND ts < $2 {group}"
        )
        try:
            async with pool.acquire() as conn:
                records = await conn.fetch(sql, start, end, lat)
        except asyncpg.UndefinedTableError:
            raise LookupError(f"no table {self.schema}.{self.table} in the database") from None
        result = []
        for record in records:
            values = list(record)
            if not values[len(keys)]:
                continue
            key = tuple(values[: len(keys)])
            pct_values = values[-1] or [None] * len(PERCENTILES)
            result.append(self._row(key, values[len(keys) : -1], pct_values))
        return result

    async def aclose(self) -> None:
        async with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
