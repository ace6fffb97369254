"""Conversations in PostgreSQL: for several processes and hosts (``pip install
"victor-orchestrator[postgres]"``).

The tables are created on first use. Each session has a version, checked with the row
locked (``SELECT ... FOR UPDATE``) in the write's transaction: a turn that read an older
version stores nothing and raises :class:`~victor.errors.SessionConflictError`, so the
turns of one session stay in order whichever process or host runs them. A read asks for
the session's version first and takes the messages from a local cache when they are at
that version.

Connections are pooled. When the server restarts, the operation in flight fails with
:class:`~victor.errors.SessionStoreError` (a read is retried once on a new connection),
the pool's old connections are dropped, and later turns work again.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Any

from victor.errors import ConfigError, SessionConflictError, SessionStoreError
from victor.protocols import ISessionStore, Message, StoredSession
from victor.protocols.tenancy import tenant_of
from victor.sessions.cache import HistoryCache

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")


class PostgresSessionStore(ISessionStore):
    """Session histories in PostgreSQL tables ``<prefix>sessions`` and
    ``<prefix>messages`` of ``schema``."""

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "public",
        table_prefix: str = "victor_",
        min_pool_size: int = 1,
        max_pool_size: int = 10,
        cache_size: int = 10_000,
        command_timeout: float = 30.0,
    ) -> None:
        for what, name in (("schema", schema), ("table_prefix", table_prefix)):
            if not _NAME.match(name):
                raise ConfigError(f"PostgreSQL {what} {name!r} must be a plain SQL identifier")
        self.dsn = dsn
        self.schema = schema
        self.min_pool_size = min_pool_size
        self.max_pool_size = max_pool_size
        self.command_timeout = command_timeout
        self._sessions = f'"{schema}".{table_prefix}sessions'
        self._messages = f'"{schema}".{table_prefix}messages'
        self._lock_key = f"{schema}.{table_prefix}sessions"
        self._cache = HistoryCache(cache_size)
        self._pool: Any = None
        self._opening = asyncio.Lock()
        self._closed = False

    # -- connections -------------------------------------------------------------------

    async def open(self) -> None:
        if self._closed:
            raise RuntimeError("the PostgreSQL session store is closed")
        if self._pool is not None:
            return
        async with self._opening:
            if self._pool is not None:
                return
            try:
                import asyncpg
            except ImportError:
                raise ConfigError(
                    "the PostgreSQL session store needs asyncpg: pip install "
                    '"victor-orchestrator[postgres]"'
                ) from None
            try:
                pool = await asyncpg.create_pool(
                    self.dsn,
                    min_size=self.min_pool_size,
                    max_size=self.max_pool_size,
                    command_timeout=self.command_timeout,
                )
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                raise SessionStoreError(
                    f"cannot connect to the session database: {type(exc).__name__}: {exc}"
                ) from exc
            try:
                await self._create_schema(pool)
            except BaseException:
                await pool.close()
                raise
            self._pool = pool

    async def _create_schema(self, pool: Any) -> None:
        async with pool.acquire() as conn, conn.transaction():
            # Processes starting together must not race on CREATE TABLE.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", self._lock_key)
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            await conn.execute(
                f"""CREATE TABLE IF NOT EXISTS {self._sessions} (
                    session_id TEXT PRIMARY KEY,
                    tenant_id TEXT,
                    version BIGINT NOT NULL,
                    next_seq INTEGER NOT NULL,
                    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
                )"""
            )
            await conn.execute(
                f"""CREATE TABLE IF NOT EXISTS {self._messages} (
                    session_id TEXT NOT NULL,
                    seq INTEGER NOT NULL,
                    body TEXT NOT NULL,
                    PRIMARY KEY (session_id, seq)
                )"""
            )
            await conn.execute(
                f"CREATE INDEX IF NOT EXISTS {self._sessions.split('.')[1]}_tenant "
                f"ON {self._sessions} (tenant_id, updated_at)"
            )

    async def _broken(self, exc: BaseException) -> bool:
        """Whether ``exc`` says the connection (not the statement) failed; if so, the
        pool's other connections are likely dead too (a server restart): drop them."""
        import asyncpg

        lost = isinstance(
            exc,
            OSError
            | asyncpg.InterfaceError
            | asyncpg.PostgresConnectionError
            | asyncpg.exceptions.AdminShutdownError
            | asyncpg.exceptions.CannotConnectNowError,
        )
        if lost and self._pool is not None:
            await self._pool.expire_connections()
        return lost

    def _error(self, action: str, session_id: str, exc: BaseException) -> SessionStoreError:
        return SessionStoreError(
            f"cannot {action} session {session_id!r}: {type(exc).__name__}: {exc}"
        )

    # -- ISessionStore -----------------------------------------------------------------

    async def read(self, session_id: str) -> StoredSession | None:
        await self.open()
        for attempt in (1, 2):  # a read may safely run again on a fresh connection
            try:
                return await self._read(session_id)
            except Exception as exc:
                if await self._broken(exc) and attempt == 1:
                    continue
                raise self._error("read", session_id, exc) from exc
        raise AssertionError("unreachable")

    async def _read(self, session_id: str) -> StoredSession | None:
        async with self._pool.acquire() as conn:
            version = await conn.fetchval(
                f"SELECT version FROM {self._sessions} WHERE session_id = $1", session_id
            )
            if version is None:
                self._cache.forget(session_id)
                return None
            cached = self._cache.get(session_id, version)
            if cached is not None:
                return StoredSession(cached, version)
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                version = await conn.fetchval(
                    f"SELECT version FROM {self._sessions} WHERE session_id = $1", session_id
                )
                bodies = await conn.fetch(
                    f"SELECT body FROM {self._messages} WHERE session_id = $1 ORDER BY seq",
                    session_id,
                )
        if version is None:
            return None
        messages = [Message.model_validate_json(row[0]) for row in bodies]
        self._cache.put(session_id, version, messages)
        return StoredSession(list(messages), version)

    async def write(
        self,
        session_id: str,
        messages: Sequence[Message],
        *,
        expected_version: int | None = None,
        replace: bool = False,
    ) -> int:
        await self.open()
        bodies = [m.model_dump_json(exclude_defaults=True) for m in messages]
        try:
            version = await self._write(session_id, bodies, expected_version, replace)
        except SessionConflictError:
            self._cache.forget(session_id)
            raise
        except Exception as exc:
            self._cache.forget(session_id)
            await self._broken(exc)
            raise self._error("store", session_id, exc) from exc
        self._cache.written(session_id, version, messages, replace=replace)
        return version

    async def _write(
        self, session_id: str, bodies: list[str], expected: int | None, replace: bool
    ) -> int:
        sessions, table = self._sessions, self._messages
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"SELECT version, next_seq FROM {sessions} WHERE session_id = $1 FOR UPDATE",
                session_id,
            )
            if row is None:
                row = await conn.fetchrow(
                    f"INSERT INTO {sessions} (session_id, tenant_id, version, next_seq) "
                    "VALUES ($1, $2, 0, 0) ON CONFLICT (session_id) DO NOTHING "
                    "RETURNING version, next_seq",
                    session_id,
                    tenant_of(session_id),
                ) or await conn.fetchrow(  # created by another writer meanwhile
                    f"SELECT version, next_seq FROM {sessions} WHERE session_id = $1 FOR UPDATE",
                    session_id,
                )
            version, seq = row["version"], row["next_seq"]
            if expected is not None and expected != version:
                raise SessionConflictError(session_id, expected, version)
            if replace:
                await conn.execute(f"DELETE FROM {table} WHERE session_id = $1", session_id)
                seq = 0
            if bodies:
                await conn.copy_records_to_table(
                    table.split(".")[1],
                    schema_name=self.schema,
                    columns=("session_id", "seq", "body"),
                    records=[(session_id, seq + i, body) for i, body in enumerate(bodies)],
                )
            await conn.execute(
                f"UPDATE {sessions} SET version = $2, next_seq = $3, updated_at = now() "
                "WHERE session_id = $1",
                session_id,
                version + 1,
                seq + len(bodies),
            )
        return version + 1

    async def delete(self, session_id: str) -> bool:
        await self.open()
        self._cache.forget(session_id)
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    f"DELETE FROM {self._messages} WHERE session_id = $1", session_id
                )
                status = await conn.execute(
                    f"DELETE FROM {self._sessions} WHERE session_id = $1", session_id
                )
        except Exception as exc:
            await self._broken(exc)
            raise self._error("delete", session_id, exc) from exc
        return status != "DELETE 0"

    async def list_sessions(self, limit: int = 100, *, tenant_id: str | None = None) -> list[str]:
        await self.open()
        if tenant_id is None:
            query = f"SELECT session_id FROM {self._sessions} ORDER BY updated_at DESC LIMIT $1"
            args: tuple[Any, ...] = (limit,)
        else:
            query = (
                f"SELECT session_id FROM {self._sessions} WHERE tenant_id = $2 "
                "ORDER BY updated_at DESC LIMIT $1"
            )
            args = (limit, tenant_id)
        try:
            async with self._pool.acquire() as conn:
                rows = await conn.fetch(query, *args)
        except Exception as exc:
            await self._broken(exc)
            raise SessionStoreError(f"cannot list sessions: {type(exc).__name__}: {exc}") from exc
        return [row[0] for row in rows]

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
