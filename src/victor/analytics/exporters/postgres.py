"""Stores events in PostgreSQL: what several processes or machines share.

Needs ``asyncpg`` (``pip install victor-orchestrator[postgres]``), imported with this module.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from victor.analytics.encoding import COLUMNS, EventEncodeError, encode_row, split_encoded
from victor.analytics.exporters.base import BaseAnalyticsExporter, partial_result
from victor.analytics.table import DEFAULT_TABLE, check_table, postgres_schema
from victor.protocols.analytics import AnalyticsEvent, ExportResult
from victor.protocols.sql import quote_ident, redact_dsn

try:
    import asyncpg
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "PostgreSQLAnalyticsExporter needs asyncpg: pip install 'victor-orchestrator[postgres]'"
    ) from exc

#: One bad row fails the whole COPY: refused by the server (a constraint added by hand) or
#: by asyncpg's encoding (a value out of range).
_REFUSED = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)
_BAD_ROW = (*_REFUSED, ArithmeticError, ValueError)


async def _chunks(items: Sequence[Any]) -> AsyncIterator[Sequence[Any]]:
    """``items`` 500 at a time, the loop free to run between chunks: a forwarded batch
    (3,000 events) takes over ten milliseconds to encode, in Python and in asyncpg."""
    for start in range(0, len(items), 500):
        yield items[start : start + 500]
        await asyncio.sleep(0)


async def migrate_postgres(conn: asyncpg.Connection, schema: str, table: str) -> None:
    """Create what is missing (schema, table, indexes), one process at a time. An up-to-date
    table needs no DDL, so a role without CREATE privileges can write to it."""
    check_table(table)
    statements, newest = postgres_schema(schema, table)
    if await conn.fetchval("SELECT to_regclass($1)", newest) is not None:
        return
    async with conn.transaction():
        lock_key = int.from_bytes(hashlib.sha1(f"{schema}.{table}".encode()).digest()[:8], "big")
        await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_key - (1 << 63))
        if await conn.fetchval("SELECT to_regnamespace($1)", quote_ident(schema)) is None:
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
        for statement in statements:
            await conn.execute(statement)


class PostgreSQLAnalyticsExporter(BaseAnalyticsExporter):
    """Writes batches to ``schema.table`` through an asyncpg pool (a remote exporter).

    A batch is COPYed into a temporary table and moved with ``INSERT ... ON CONFLICT
    (event_id) DO NOTHING`` in one transaction, so a batch sent twice is stored once. After
    a failure the next export gets a fresh pool. ``migrate=False`` never runs DDL (for a
    role that may only write to a table a DBA made with :func:`migrate_postgres`); an
    up-to-date table is only read either way.
    """

    outbox = True
    takes_records = True

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "public",
        table: str = DEFAULT_TABLE,
        min_pool_size: int = 1,
        max_pool_size: int = 4,
        connect_timeout: float = 10.0,
        command_timeout: float = 30.0,
        application_name: str = "victor-analytics",
        name: str | None = None,
        migrate: bool = True,
    ) -> None:
        quote_ident(schema, "schema")
        check_table(table)
        self.dsn, self.schema, self.table, self.migrate = dsn, schema, table, migrate
        self.destination = f"{redact_dsn(dsn)}#{schema}.{table}"
        self.min_pool_size, self.max_pool_size = min_pool_size, max(1, max_pool_size)
        self.connect_timeout, self.command_timeout = connect_timeout, command_timeout
        self.application_name = application_name
        self.name = name or self.name
        self.pool_resets = 0
        self._pool: asyncpg.Pool | None = None
        self._ready = False
        self._lock = asyncio.Lock()
        target = f"{quote_ident(schema)}.{quote_ident(table)}"
        cols = ", ".join(COLUMNS)
        digest = hashlib.sha1(f"{schema}.{table}".encode()).hexdigest()[:12]
        self._stage = f"victor_stage_{digest}"
        self._create_stage = (
            f"CREATE TEMP TABLE IF NOT EXISTS {self._stage} "
            f"(LIKE {target} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        self._move = (
            f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {self._stage} "
            "ON CONFLICT (event_id) DO NOTHING"
        )

    async def _get_pool(self) -> asyncpg.Pool:
        async with self._lock:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self.dsn,
                    min_size=self.min_pool_size,
                    max_size=self.max_pool_size,
                    timeout=self.connect_timeout,
                    command_timeout=self.command_timeout,
                    server_settings={"application_name": self.application_name},
                )
            if self.migrate and not self._ready:
                async with self._pool.acquire(timeout=self.connect_timeout) as conn:
                    await migrate_postgres(conn, self.schema, self.table)
                self._ready = True
            return self._pool

    async def export(self, events: Sequence[AnalyticsEvent]) -> ExportResult:
        rows: list[tuple[Any, ...]] = []
        rejected: list[EventEncodeError] = []
        async for chunk in _chunks(events):
            good, bad = split_encoded(chunk, encode_row)
            rows += good
            rejected += bad
        if not rows:
            return partial_result(0, rejected)
        refused: list[EventEncodeError] = []
        try:
            pool = await self._get_pool()
            async with pool.acquire(timeout=self.connect_timeout) as conn:
                try:
                    await self._write(conn, rows)
                except _BAD_ROW:  # find the bad rows, store the others
                    refused = await self._write_one_by_one(conn, rows)
        except Exception as exc:
            # A cut connection, a server restart, a table dropped under us: the next try
            # starts afresh, with a new pool and the table checked again.
            await self._reset_pool()
            # Nothing was stored: no ids, so the whole batch is sent again (events that
            # cannot be encoded are found again then).
            return ExportResult(success=False, error=f"PostgreSQL: {type(exc).__name__}: {exc}")
        return partial_result(len(rows) - len(refused), [*rejected, *refused])

    async def _write(self, conn: asyncpg.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        async with conn.transaction():
            await conn.execute(self._create_stage)
            records = (row async for chunk in _chunks(rows) for row in chunk)
            await conn.copy_records_to_table(self._stage, records=records, columns=COLUMNS)
            await conn.execute(self._move)

    async def _write_one_by_one(
        self, conn: asyncpg.Connection, rows: Sequence[tuple[Any, ...]]
    ) -> list[EventEncodeError]:
        bad: list[EventEncodeError] = []
        for row in rows:
            try:
                await self._write(conn, [row])
            except _BAD_ROW as exc:
                bad.append(EventEncodeError(row[0], f"refused by PostgreSQL: {exc}"))
        return bad

    async def _reset_pool(self) -> None:
        async with self._lock:
            pool, self._pool, self._ready = self._pool, None, False
        if pool is not None:
            self.pool_resets += 1
            pool.terminate()

    async def shutdown(self) -> None:
        async with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), 10.0)
            except Exception:
                pool.terminate()
