"""The events of a recent window, read from the analytics store (the SQLite file or
PostgreSQL database the exporters write): the snapshot a page gets on connect, and the
tail that ``victor dashboard --db`` follows."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import orjson

from victor.analytics.reports import AnalyticsReader, PostgresReader
from victor.analytics.table import DEFAULT_TABLE
from victor.protocols.sql import quote_ident

_FIELDS = "event_id, type, session_id, tenant_id, experiment, variant"


def _wire(row: tuple[Any, ...], ts: float, data: Any) -> dict[str, Any]:
    if isinstance(data, str | bytes):
        data = orjson.loads(data) if data else {}
    return {
        "id": row[0],
        "type": row[1],
        "session": row[2],
        "tenant": row[3],
        "experiment": row[4],
        "variant": row[5],
        "ts": round(ts * 1000, 3),
        "data": data or {},
    }


class EventStore:
    """Reads wire events from ``url``: a SQLite file (``sqlite:///path`` or a path) or
    ``postgresql://...`` (``?schema=&table=`` as for the exporter)."""

    def __init__(self, url: str | Path) -> None:
        reader = AnalyticsReader.from_url(url)
        self.url = str(url)
        self._pg: PostgresReader | None = reader if isinstance(reader, PostgresReader) else None
        self._path = None if self._pg else Path(getattr(reader, "path", url))
        self._table = reader.table
        self._pool: Any = None
        self._lock = asyncio.Lock()

    async def since(self, ts: float, limit: int = 20_000) -> list[dict[str, Any]]:
        """Events with a timestamp (Unix seconds) at or after ``ts``, oldest first; the
        newest ``limit`` when there are more. An absent store reads as empty."""
        if self._pg is None:
            return await asyncio.to_thread(self._sqlite_since, ts, limit)
        return await self._postgres_since(ts, limit)

    def _sqlite_since(self, ts: float, limit: int) -> list[dict[str, Any]]:
        assert self._path is not None
        if not self._path.exists():
            return []
        conn = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True, timeout=30.0)
        try:
            rows = conn.execute(
                f"SELECT {_FIELDS}, ts, data FROM {quote_ident(self._table)} WHERE ts >= ? "
                "ORDER BY ts DESC LIMIT ?",
                (ts, limit),
            ).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise
        finally:
            conn.close()
        return [_wire(r, r[6], r[7]) for r in reversed(rows)]

    async def _postgres_since(self, ts: float, limit: int) -> list[dict[str, Any]]:
        import asyncpg

        pg = self._pg
        assert pg is not None
        async with self._lock:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(pg.dsn, min_size=0, max_size=2, timeout=10)
        table = f"{quote_ident(pg.schema)}.{quote_ident(pg.table)}"
        try:
            async with self._pool.acquire() as conn:
                rows = await conn.fetch(
                    f"SELECT {_FIELDS}, extract(epoch FROM ts)::float8, data::text FROM {table} "
                    "WHERE ts >= to_timestamp($1) ORDER BY ts DESC LIMIT $2",
                    ts,
                    limit,
                )
        except asyncpg.UndefinedTableError:
            return []
        return [_wire(tuple(r), r[6], r[7]) for r in reversed(rows)]

    async def aclose(self) -> None:
        async with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()


def default_store() -> Path:
    from victor.config import Settings

    return Settings().data_dir / "analytics.db"


__all__ = ["DEFAULT_TABLE", "EventStore", "default_store"]
