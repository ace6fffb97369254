"""Stores events in PostgreSQL: what several processes or machines share.

Each batch is encoded once, as the lines of a ``COPY`` in PostgreSQL's text format; that is
what the outbox keeps, so forwarding a batch is sending those bytes. Needs ``asyncpg``
(``pip install victor-orchestrator[postgres]``), imported with this module.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from victor.analytics.encoding import COLUMNS, EventEncodeError, encode_row, split_encoded
from victor.analytics.exporters._schema import (
    DEFAULT_TABLE,
    check_table,
    ident,
    postgres_migrations,
)
from victor.analytics.exporters.base import BaseAnalyticsExporter, partial_result
from victor.protocols.analytics import AnalyticsEvent, ExportResult

try:
    import asyncpg
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "PostgreSQLAnalyticsExporter needs asyncpg: pip install 'victor-orchestrator[postgres]'"
    ) from exc

logger = logging.getLogger("victor.analytics")

#: A lost or cut connection (also in the middle of a COPY): a fresh pool usually works.
_CONNECTION_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
)
#: What a retry cannot fix: a missing database, role or privilege, a bad name.
_CONFIG_ERRORS = (
    ValueError,
    asyncpg.InsufficientPrivilegeError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidAuthorizationSpecificationError,
)
_MISSING = (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError)
#: One bad row (or a constraint added by hand) fails the whole COPY.
_BAD_ROW = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)


def redact_dsn(dsn: str) -> str:
    """The DSN without its password (URL or ``key=value`` form)."""
    if "://" not in dsn:
        return " ".join(sorted(p for p in dsn.split() if not p.startswith("password=")))
    parts = urlsplit(dsn)
    host = parts.netloc.rsplit("@", 1)[-1]
    netloc = f"{parts.username}@{host}" if parts.username else host
    query = urlencode(sorted((k, v) for k, v in parse_qsl(parts.query) if k != "password"))
    scheme = "postgresql" if parts.scheme == "postgres" else parts.scheme
    return urlunsplit((scheme, netloc, parts.path, query, ""))


def _escape(text: str) -> str:
    text = text.replace("\\", "\\\\").replace("\t", "\\t")
    return text.replace("\n", "\\n").replace("\r", "\\r")


def copy_line(event: Any) -> bytes:
    """One event as a line of ``COPY``'s text format (see :data:`COLUMNS`)."""
    row: list[Any] = list(encode_row(event))
    row[6] = row[6].isoformat()
    row[14] = "t" if row[14] else "f"
    for i in range(9, 14):  # the numbers
        if row[i] is not None:
            row[i] = repr(row[i])
    line = "\t".join(["\\N" if v is None else v for v in row])
    # The common case needs no escaping (no backslash but those of the NULLs, no newline,
    # no tab but the separators): checking is cheaper than escaping each field.
    specials = line.count("\\") - row.count(None) + line.count("\t") - (len(row) - 1)
    if specials or "\n" in line or "\r" in line:
        line = "\t".join(["\\N" if v is None else _escape(v) for v in row])
    return f"{line}\n".encode()


def _lines(payload: bytes) -> list[bytes]:
    return [line + b"\n" for line in payload.split(b"\n")[:-1]]


def _event_id(line: bytes) -> str:
    return line.split(b"\t", 1)[0].decode()


async def schema_version(conn: asyncpg.Connection, schema: str, table: str) -> int | None:
    """The migrations applied to ``schema.table``; None when it was never migrated."""
    versions = f"{ident(schema)}.{ident(table + '_schema_version')}"
    if await conn.fetchval("SELECT to_regclass($1)", versions) is None:
        return None
    return int(await conn.fetchval(f"SELECT COALESCE(MAX(version), 0) FROM {versions}"))


async def migrate_postgres(conn: asyncpg.Connection, schema: str, table: str) -> int:
    """Apply the missing migrations (one process at a time). Reads the version first: an
    up-to-date table needs no DDL, so a role without CREATE privileges can write to it;
    the schema is created only when missing."""
    check_table(table)
    versions = f"{ident(schema)}.{ident(table + '_schema_version')}"
    migrations = postgres_migrations(schema, table)
    current = await schema_version(conn, schema, table)
    if current is not None and current >= len(migrations):
        return len(migrations)
    async with conn.transaction():
        lock_key = int.from_bytes(hashlib.sha1(f"{schema}.{table}".encode()).digest()[:8], "big")
        await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_key - (1 << 63))
        if await conn.fetchval("SELECT to_regnamespace($1)", ident(schema)) is None:
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(schema)}")
        if await schema_version(conn, schema, table) is None:
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {versions} (version integer PRIMARY KEY, "
                "applied_at timestamptz NOT NULL DEFAULT now())"
            )
        current = await schema_version(conn, schema, table) or 0
        for version, statements in enumerate(migrations, start=1):
            if version > current:
                for statement in statements:
                    await conn.execute(statement)
                await conn.execute(f"INSERT INTO {versions} (version) VALUES ($1)", version)
    return len(migrations)


class PostgreSQLAnalyticsExporter(BaseAnalyticsExporter):
    """Writes batches to ``schema.table`` through an asyncpg pool.

    A remote exporter (``outbox = True``): the coordinator writes its batches to the local
    outbox first (as :meth:`encode_batch` makes them) and forwards them, so an outage or a
    restart loses nothing. A batch is COPYed into a temporary table and moved with
    ``INSERT ... ON CONFLICT (event_id) DO NOTHING``, in one transaction: a batch sent twice
    (a retry after a lost commit acknowledgement, an outbox replay) is stored once.
    A connection error recreates the pool and retries (``max_retries``, with back-off), so
    a cut connection does not make the destination look down; a configuration error (a
    missing database or privilege) is logged and not retried here.

    ``migrate=False`` never runs DDL: for a role that may only write to a table a DBA
    created (with :func:`migrate_postgres` or ``victor``'s migrations). Even with the
    default ``True``, an up-to-date table is only read (no CREATE privilege needed).
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
        max_retries: int = 3,
        retry_backoff: float = 0.05,
        connect_timeout: float = 10.0,
        command_timeout: float = 30.0,
        application_name: str = "victor-analytics",
        name: str | None = None,
        migrate: bool = True,
    ) -> None:
        ident(schema)
        check_table(table)
        self.dsn, self.schema, self.table, self.migrate = dsn, schema, table, migrate
        self.destination = f"{redact_dsn(dsn)}#{schema}.{table}"
        self.min_pool_size, self.max_pool_size = min_pool_size, max(1, max_pool_size)
        self.max_retries, self.retry_backoff = max_retries, retry_backoff
        self.connect_timeout, self.command_timeout = connect_timeout, command_timeout
        self.application_name = application_name
        if name:
            self.name = name
        self.pool_resets = 0
        self._pool: asyncpg.Pool | None = None
        self._ready = False
        self._lock = asyncio.Lock()
        target = f"{ident(schema)}.{ident(table)}"
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
            if not self._ready:
                if self.migrate:
                    async with self._pool.acquire(timeout=self.connect_timeout) as conn:
                        await migrate_postgres(conn, self.schema, self.table)
                self._ready = True
            return self._pool

    async def _reset_pool(self) -> None:
        async with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            self.pool_resets += 1
            pool.terminate()

    def encode_batch(self, events: Sequence[Any]) -> tuple[bytes, list[EventEncodeError]]:
        """The ``COPY`` lines of the events it can store, and the errors of the others."""
        lines, rejected = split_encoded(events, copy_line)
        return b"".join(lines), rejected

    async def export(self, events: Sequence[AnalyticsEvent]) -> ExportResult:
        payload, rejected = self.encode_batch(events)
        stored, refused, error = await self._store(payload)
        if error is not None:
            return ExportResult(
                success=False,
                error=error,
                failed_event_ids=[_event_id(line) for line in _lines(payload)],
                rejected_event_ids=[e.event_id for e in rejected],
            )
        return partial_result(stored, [*rejected, *refused])

    async def export_encoded(self, payload: bytes) -> ExportResult:
        """Store a batch made by :meth:`encode_batch` (from the outbox)."""
        stored, refused, error = await self._store(payload)
        return (
            ExportResult(success=False, error=error) if error else partial_result(stored, refused)
        )

    async def _store(self, payload: bytes) -> tuple[int, list[EventEncodeError], str | None]:
        """(events stored, events refused by the server, the error when nothing was)."""
        if not payload:
            return 0, [], None
        error = ""
        for attempt in range(self.max_retries + 1):
            if attempt:  # a cut connection: a fresh one usually works at once
                await asyncio.sleep(self.retry_backoff * 2 ** (attempt - 1) * random.random())
            try:
                pool = await self._get_pool()
                async with pool.acquire(timeout=self.connect_timeout) as conn:
                    await self._write(conn, payload)
                return payload.count(b"\n"), [], None
            except _BAD_ROW:  # find the bad rows, store the others
                bad = await self._write_one_by_one(payload)
                return payload.count(b"\n") - len(bad), bad, None
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                if isinstance(exc, _MISSING) and self.migrate:
                    self._ready = False  # dropped under us: migrate again
                elif isinstance(exc, _CONFIG_ERRORS + _MISSING):  # say so loudly, no retry
                    logger.error("PostgreSQL configuration error %s: %s", self.destination, error)
                    return 0, [], f"PostgreSQL configuration error: {error}"
                if isinstance(exc, _CONNECTION_ERRORS):
                    await self._reset_pool()  # every pooled connection is suspect
        return 0, [], f"PostgreSQL: {error}"

    async def _write(self, conn: asyncpg.Connection, payload: bytes) -> None:
        async with conn.transaction():
            await conn.execute(self._create_stage)
            # A memoryview: asyncpg would take bytes for a file name.
            await conn.copy_to_table(self._stage, source=memoryview(payload), columns=COLUMNS)
            await conn.execute(self._move)

    async def _write_one_by_one(self, payload: bytes) -> list[EventEncodeError]:
        bad: list[EventEncodeError] = []
        pool = await self._get_pool()
        async with pool.acquire(timeout=self.connect_timeout) as conn:
            for line in _lines(payload):
                try:
                    await self._write(conn, line)
                except _BAD_ROW as exc:
                    bad.append(EventEncodeError(_event_id(line), f"refused by PostgreSQL: {exc}"))
        return bad

    async def shutdown(self) -> None:
        async with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), 10.0)
            except Exception:
                pool.terminate()
