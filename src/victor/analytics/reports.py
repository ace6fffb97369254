"""The read side: aggregates over the events table, the same SQL on SQLite and PostgreSQL.

``AnalyticsReader.from_url(...)`` then ``await reader.summary(since="24h", by="model")``:
counts, tokens, cost, latency percentiles (nearest rank) and error rate per model, tool,
tenant, experiment, variant or time bucket. Tokens and cost come from ``token_usage``
events; ``unpriced`` counts those without a price (``cost_usd`` is then a lower bound, and
None where nothing was priced). Naive datetimes are UTC. Latency is that of model calls by
model, of tool calls by tool, of chat turns otherwise. ``error_rate`` = (errors + failed
tool calls) / (model calls + tool calls + errors).
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from victor.analytics.events import CHAT_COMPLETE, ERROR, LLM_REQUEST, TOKEN_USAGE, TOOL_CALL
from victor.analytics.table import DEFAULT_TABLE
from victor.protocols.sql import quote_ident

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
Rows = list[Sequence[Any]]
Params = tuple[Any, ...]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str | timedelta) -> timedelta:
    """``"90s"``, ``"15m"``, ``"24h"``, ``"7d"``, ``"2w"``."""
    if isinstance(value, timedelta):
        return value
    if not (match := _DURATION.match(value)):
        raise ValueError(f"invalid duration {value!r}: use e.g. 30m, 24h, 7d")
    return timedelta(seconds=float(match[1]) * _UNITS[match[2]])


def parse_since(value: str | timedelta | datetime | None, now: datetime | None = None) -> datetime:
    """The start of a window: a duration back from now (24 hours by default), or an ISO
    date/time."""
    if value is None or isinstance(value, timedelta) or _DURATION.match(str(value)):
        return (now or datetime.now(UTC)) - parse_duration(value or "24h")
    return _utc(value)  # type: ignore[arg-type]


def parse_until(value: str | datetime | None, now: datetime | None = None) -> datetime:
    """The end of a window (exclusive): now by default, or an ISO date/time."""
    return (now or datetime.now(UTC)) + timedelta(seconds=1) if value is None else _utc(value)


def _utc(value: str | datetime) -> datetime:
    """A naive date/time is UTC (never local time), as events' timestamps are."""
    value = datetime.fromisoformat(value) if isinstance(value, str) else value
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
    AVG(CASE WHEN type = {{p}}3 THEN latency_ms END),
    COUNT(CASE WHEN type = '{TOKEN_USAGE}' THEN cost_usd END)"""


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


class AnalyticsReader(ABC):
    """Reads an analytics store written by the SQLite or PostgreSQL exporter."""

    placeholder = "?"  # numbered: ?1 (SQLite), $1 (PostgreSQL)

    def __init__(self, table: str = DEFAULT_TABLE) -> None:
        self.table, self.target = table, quote_ident(table)

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

    async def summary(
        self,
        since: str | timedelta | datetime | None = "24h",
        until: str | datetime | None = None,
        by: str | Sequence[str] | None = "model",
        *,
        bucket: str | timedelta = "1h",
        latency_of: str | None = None,
    ) -> list[SummaryRow]:
        """One row per group over ``[since, until)``, most events first (by time for buckets)."""
        dims = [by] if isinstance(by, str) else list(by or [])
        for dim in dims:
            if dim not in DIMENSIONS and dim != "bucket":
                raise ValueError(f"cannot group by {dim!r}: use {', '.join(DIMENSIONS)}, bucket")
        seconds = max(1, int(parse_duration(bucket).total_seconds()))
        keys = [self._bucket(seconds) if d == "bucket" else DIMENSIONS[d] for d in dims]
        by_tool, by_model = "tool" in dims, "model" in dims
        latency_of = latency_of or (
            TOOL_CALL if by_tool else LLM_REQUEST if by_model else CHAT_COMPLETE
        )
        times = (self._time(parse_since(since)), self._time(parse_until(until)))
        aggregates, pct_rows = await self._fetch(*self._sql(keys), (*times, latency_of))
        width = len(keys)
        percentiles = {tuple(r[:width]): r[width:] for r in pct_rows}
        rows = [
            _row(self._key(dims, r[:width]), r[width:], percentiles.get(tuple(r[:width]), ()))
            for r in aggregates
            if r[width]  # COUNT(*) = 0: an empty window without GROUP BY
        ]
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

    def _sql(self, keys: list[str]) -> tuple[str, str]:
        """The aggregates and the percentiles (nearest rank: the first value whose rank
        reaches p * n) over ``ts`` in [p1, p2), latency of type p3, grouped by ``keys``."""
        p = self.placeholder
        cols = [f"{expr} AS k{i}" for i, expr in enumerate(keys)]
        names = [f"k{i}" for i in range(len(keys))]
        group = f"GROUP BY {', '.join(names)}" if keys else ""
        partition = f"PARTITION BY {', '.join(keys)}" if keys else ""
        where = f"FROM {self.target} WHERE ts >= {p}1 AND ts < {p}2"
        aggregates = _AGGREGATES.format(p=p)
        agg_sql = f"SELECT {', '.join([*cols, aggregates])} {where} {group}"
        picks = [f"MIN(CASE WHEN rn >= {q} * n THEN latency_ms END)" for q in PERCENTILES]
        ranked = ", ".join([*cols, "latency_ms"])
        pct_sql = (
            f"SELECT {', '.join([*names, *picks])} FROM (SELECT {ranked}, "
            f"ROW_NUMBER() OVER ({partition} ORDER BY latency_ms) AS rn, "
            f"COUNT(*) OVER ({partition}) AS n {where} AND type = {p}3 "
            f"AND latency_ms IS NOT NULL) AS ranked {group}"
        )
        return agg_sql, pct_sql

    def _key(self, dims: list[str], values: Sequence[Any]) -> tuple[Any, ...]:
        """A time bucket as an aware datetime (SQLite gives Unix seconds)."""
        return tuple(
            datetime.fromtimestamp(v, UTC) if d == "bucket" and isinstance(v, int | float) else v
            for d, v in zip(dims, values, strict=True)
        )

    def _time(self, value: datetime) -> Any:
        return value

    @abstractmethod
    def _bucket(self, seconds: int) -> str:
        """The SQL of a time bucket ``seconds`` wide."""

    @abstractmethod
    async def _fetch(self, agg_sql: str, pct_sql: str, params: Params) -> tuple[Rows, Rows]:
        """The rows of both queries."""

    async def aclose(self) -> None:  # noqa: B027 - nothing to release by default
        """Release the connection."""

    async def __aenter__(self) -> AnalyticsReader:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class SQLiteReader(AnalyticsReader):
    """Reads the SQLite store, from a worker thread (WAL: the exporter keeps writing)."""

    def __init__(self, path: Path, *, table: str = DEFAULT_TABLE) -> None:
        super().__init__(table)
        self.path = path

    def _bucket(self, seconds: int) -> str:
        return f"(CAST(ts / {seconds} AS INTEGER) * {seconds})"

    def _time(self, value: datetime) -> float:
        return value.timestamp()

    async def _fetch(self, agg_sql: str, pct_sql: str, params: Params) -> tuple[Rows, Rows]:
        return await asyncio.to_thread(self._run, agg_sql, pct_sql, params)

    def _run(self, agg_sql: str, pct_sql: str, params: Params) -> tuple[Rows, Rows]:
        if not self.path.exists():
            raise FileNotFoundError(f"no analytics database at {self.path}")
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30.0)
        try:
            return tuple(conn.execute(sql, params).fetchall() for sql in (agg_sql, pct_sql))
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                raise LookupError(f"{self.path} has no table {self.table!r}") from None
            raise
        finally:
            conn.close()


class PostgresReader(AnalyticsReader):
    """Reads the PostgreSQL store through a small pool: concurrent calls run side by side."""

    placeholder = "$"

    def __init__(self, dsn: str, *, schema: str = "public", table: str = DEFAULT_TABLE) -> None:
        super().__init__(table)
        self.target = f"{quote_ident(schema, 'schema')}.{self.target}"
        self.dsn, self.schema = dsn, schema
        self._pool: Any = None
        self._pool_lock = asyncio.Lock()

    def _bucket(self, seconds: int) -> str:
        return f"to_timestamp(floor(extract(epoch FROM ts) / {seconds}) * {seconds})"

    async def _fetch(self, agg_sql: str, pct_sql: str, params: Params) -> tuple[Rows, Rows]:
        import asyncpg

        async with self._pool_lock:  # one pool, however many calls start at once
            if self._pool is None:
                self._pool = await asyncpg.create_pool(self.dsn, min_size=0, max_size=4, timeout=10)
        try:
            async with self._pool.acquire() as conn:
                return await conn.fetch(agg_sql, *params), await conn.fetch(pct_sql, *params)
        except asyncpg.UndefinedTableError:
            raise LookupError(f"no table {self.schema}.{self.table} in the database") from None

    async def aclose(self) -> None:
        async with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
