"""One value per tenant in a database table (SQLite or PostgreSQL), read through a cache.

Used by :class:`~victor.agent.coordinators.config_coordinator.TenantConfigProvider`
(``tenant_configs``) and
:class:`~victor.agent.coordinators.prompt_coordinator.TenantPromptContributor`
(``tenant_prompt_templates``). The table is created on first use::

    tenant_id TEXT PRIMARY KEY, <column> TEXT (JSONB in PostgreSQL for JSON), updated_at

A value is read at most once per ``ttl`` seconds per tenant in each process (a tenant
without a row is cached too), and concurrent turns of a tenant missing from the cache
share one query. When the database cannot be reached, the last value read keeps being
served (logged); with none, the error is raised to every turn that waited for that query,
and nothing is cached: the next turn asks the database again.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from victor.errors import ConfigError
from victor.protocols.sql import check_ident, redact_dsn

logger = logging.getLogger(__name__)

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_dsn(dsn_or_path: str | Path) -> bool:
    return isinstance(dsn_or_path, str) and dsn_or_path.startswith(_POSTGRES_SCHEMES)


class TenantTable:
    """``tenant_id -> text`` in ``table`` of a SQLite file or a PostgreSQL database."""

    def __init__(
        self,
        dsn_or_path: str | Path,
        *,
        table: str,
        column: str,
        ttl: float = 60.0,
        schema: str = "public",
        json_column: bool = False,
        max_cached: int = 10_000,
    ) -> None:
        for what, name in (("table", table), ("column", column), ("schema", schema)):
            check_ident(name, what)
        if ttl < 0:
            raise ConfigError(f"ttl must be >= 0 seconds, not {ttl}")
        self.postgres = is_postgres_dsn(dsn_or_path)
        self.dsn_or_path = dsn_or_path if self.postgres else Path(dsn_or_path).expanduser()
        self.table = table
        self.column = column
        self.schema = schema
        self.ttl = ttl
        self.max_cached = max_cached
        self._json = json_column
        self._qualified = f'"{schema}".{table}' if self.postgres else table
        self._cache: OrderedDict[str, tuple[float, str | None]] = OrderedDict()
        self._loading: dict[str, asyncio.Task[str | None]] = {}  # tenant -> its query
        self._generation = 0  # moved on by invalidate()
        self._pool: Any = None
        self._opening = asyncio.Lock()
        self._created = False  # the SQLite table

    @property
    def source(self) -> str:
        """Where the values live, for messages (a DSN's password is not shown)."""
        where = redact_dsn(self.dsn_or_path) if self.postgres else self.dsn_or_path
        return f"table {self.table} in {where}"

    # -- reading -----------------------------------------------------------------------

    async def get(self, tenant_id: str) -> str | None:
        """The tenant's value (None without a row), from the cache when fresh. Callers
        arriving while the tenant's value is being read wait for that one query."""
        hit = self._cache.get(tenant_id)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        loading = self._loading.get(tenant_id)
        if loading is None or loading.get_loop() is not asyncio.get_running_loop():
            loading = asyncio.create_task(self._load(tenant_id, hit))
            self._loading[tenant_id] = loading
            loading.add_done_callback(functools.partial(self._loaded, tenant_id))
        # Shielded: a caller that is cancelled leaves the query to the others.
        return await asyncio.shield(loading)

    def _loaded(self, tenant_id: str, task: asyncio.Task[str | None]) -> None:
        if self._loading.get(tenant_id) is task:
            del self._loading[tenant_id]
        if not task.cancelled():
            task.exception()  # retrieved, even when every caller was cancelled

    async def _load(self, tenant_id: str, hit: tuple[float, str | None] | None) -> str | None:
        now = time.monotonic()
        generation = self._generation
        try:
            value = await self._fetch(tenant_id)
        except ConfigError:
            raise
        except Exception as exc:
            if hit is None:
                raise
            logger.warning(
                "%s cannot be read (%s: %s); serving tenant %r's last value",
                self.source,
                type(exc).__name__,
                exc,
                tenant_id,
            )
            value = hit[1]
        if generation == self._generation:  # not invalidated (a write) while reading
            self._remember(tenant_id, value, now)
        return value

    def _remember(self, tenant_id: str, value: str | None, now: float) -> None:
        self._cache[tenant_id] = (now + self.ttl, value)
        self._cache.move_to_end(tenant_id)
        while len(self._cache) > self.max_cached:
            self._cache.popitem(last=False)

    def invalidate(self, tenant_id: str | None = None) -> None:
        """Forget the cached value of one tenant (all tenants with None); a read under
        way is not cached, and later callers do not wait for it."""
        self._generation += 1
        if tenant_id is None:
            self._cache.clear()
            self._loading.clear()
        else:
            self._loading.pop(tenant_id, None)
            self._cache.pop(tenant_id, None)

    async def _fetch(self, tenant_id: str) -> str | None:
        if not self.postgres:
            return await asyncio.to_thread(self._sqlite_fetch, tenant_id)
        pool = await self._postgres_pool()
        return await pool.fetchval(
            f"SELECT {self.column} FROM {self._qualified} WHERE tenant_id = $1", tenant_id
        )

    # -- writing -----------------------------------------------------------------------

    async def put(self, tenant_id: str, value: str) -> None:
        """Insert or replace the tenant's value (seen by other processes after their TTL)."""
        if not self.postgres:
            await asyncio.to_thread(self._sqlite_put, tenant_id, value)
        else:
            pool = await self._postgres_pool()
            cast = "::jsonb" if self._json else ""
            await pool.execute(
                f"INSERT INTO {self._qualified} (tenant_id, {self.column}, updated_at) "
                f"VALUES ($1, $2{cast}, now()) ON CONFLICT (tenant_id) DO UPDATE SET "
                f"{self.column} = EXCLUDED.{self.column}, updated_at = now()",
                tenant_id,
                value,
            )
        self.invalidate(tenant_id)

    async def delete(self, tenant_id: str) -> None:
        if not self.postgres:
            await asyncio.to_thread(self._sqlite_delete, tenant_id)
        else:
            pool = await self._postgres_pool()
            await pool.execute(f"DELETE FROM {self._qualified} WHERE tenant_id = $1", tenant_id)
        self.invalidate(tenant_id)

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    # -- SQLite (in a worker thread: a connection per call, the table made once) --------

    def _sqlite(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.dsn_or_path, timeout=10.0)
        if not self._created:
            with conn:
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {self.table} (tenant_id TEXT PRIMARY KEY, "
                    f"{self.column} TEXT NOT NULL, updated_at REAL NOT NULL)"
                )
            self._created = True
        return conn

    def _sqlite_fetch(self, tenant_id: str) -> str | None:
        conn = self._sqlite()
        try:
            row = conn.execute(
                f"SELECT {self.column} FROM {self.table} WHERE tenant_id = ?", (tenant_id,)
            ).fetchone()
        finally:
            conn.close()
        return None if row is None else row[0]

    def _sqlite_put(self, tenant_id: str, value: str) -> None:
        conn = self._sqlite()
        try:
            with conn:
                conn.execute(
                    f"INSERT INTO {self.table} (tenant_id, {self.column}, updated_at) "
                    f"VALUES (?, ?, ?) ON CONFLICT (tenant_id) DO UPDATE SET "
                    f"{self.column} = excluded.{self.column}, updated_at = excluded.updated_at",
                    (tenant_id, value, time.time()),
                )
        finally:
            conn.close()

    def _sqlite_delete(self, tenant_id: str) -> None:
        conn = self._sqlite()
        try:
            with conn:
                conn.execute(f"DELETE FROM {self.table} WHERE tenant_id = ?", (tenant_id,))
        finally:
            conn.close()

    # -- PostgreSQL --------------------------------------------------------------------

    async def _postgres_pool(self) -> Any:
        if self._pool is not None:
            return self._pool
        async with self._opening:
            if self._pool is not None:
                return self._pool
            try:
                import asyncpg
            except ImportError:
                raise ConfigError(
                    f"{self.source} needs asyncpg: pip install 'victor-orchestrator[postgres]'"
                ) from None
            pool = await asyncpg.create_pool(
                str(self.dsn_or_path), min_size=1, max_size=4, command_timeout=10.0
            )
            kind = "JSONB" if self._json else "TEXT"
            try:
                async with pool.acquire() as conn, conn.transaction():
                    # Processes starting together must not race on CREATE TABLE.
                    await conn.execute(
                        "SELECT pg_advisory_xact_lock(hashtext($1))", self._qualified
                    )
                    await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
                    await conn.execute(
                        f"CREATE TABLE IF NOT EXISTS {self._qualified} ("
                        f"tenant_id TEXT PRIMARY KEY, {self.column} {kind} NOT NULL, "
                        "updated_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                    )
            except BaseException:
                await pool.close()
                raise
            self._pool = pool
            return pool
