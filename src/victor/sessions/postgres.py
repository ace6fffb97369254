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
from collections.abc import Sequence
from typing import Any

from victor.errors import ConfigError, SessionConflictError, SessionStoreError
from victor.protocols import ISessionStore, Message, StoredSession
from victor.protocols.sql import check_ident
from victor.protocols.tenancy import tenant_of
from victor.sessions.cache import HistoryCache


async def _end_transaction(conn: Any) -> None:
    """What a connection needs before another call uses it. The store sets no session
    state (no SET, LISTEN, cursors or session locks), so the pool's default reset query,
    one more round trip on every release, has nothing to undo."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


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
        check_ident(schema, "PostgreSQL schema")
        check_ident(table_prefix, "PostgreSQL table_prefix", max_length=41)
        self.dsn = dsn
        self.schema = schema
        self.min_pool_size = min_pool_size
        self.max_pool_size = max_pool_size
        self.command_timeout = command_timeout
        self._prefix = table_prefix
        self._sessions = f'"{schema}".{table_prefix}sessions'
        self._messages = f'"{schema}".{table_prefix}messages'
        self._function = f'"{schema}".{table_prefix}write_session'
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
                    reset=_end_transaction,
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
                f"CREATE INDEX IF NOT EXISTS {self._prefix}sessions_tenant "
                f"ON {self._sessions} (tenant_id, updated_at)"
            )
            await conn.execute(self._write_function())

    def _write_function(self) -> str:
        """One write, one round trip: check the version with the row locked, then append
        or replace. Returns the new version, or -1 - the version found on a conflict.
        Message numbers only grow (a replaced history continues after the old one)."""
        return f"""
CREATE OR REPLACE FUNCTION {self._function}(
    p_session TEXT, p_tenant TEXT, p_expected BIGINT, p_replace BOOLEAN, p_bodies TEXT[]
) RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    found_version BIGINT;
    seq0 INTEGER;
BEGIN
    SELECT version, next_seq INTO found_version, seq0
        FROM {self._sessions} WHERE session_id = p_session FOR UPDATE;
    IF NOT FOUND THEN
        IF coalesce(p_expected, 0) <> 0 THEN
            RETURN -1;
        END IF;
        INSERT INTO {self._sessions} (session_id, tenant_id, version, next_seq)
            VALUES (p_session, p_tenant, 0, 0) ON CONFLICT (session_id) DO NOTHING;
        SELECT version, next_seq INTO found_version, seq0
            FROM {self._sessions} WHERE session_id = p_session FOR UPDATE;
    END IF;
    IF p_expected IS NOT NULL AND p_expected <> found_version THEN
        RETURN -1 - found_version;
    END IF;
    IF p_replace THEN
        DELETE FROM {self._messages} WHERE session_id = p_session;
    END IF;
    INSERT INTO {self._messages} (session_id, seq, body)
        SELECT p_session, seq0 + ord - 1, body
        FROM unnest(p_bodies) WITH ORDINALITY AS t(body, ord);
    UPDATE {self._sessions}
        SET version = found_version + 1, next_seq = seq0 + cardinality(p_bodies),
            updated_at = now()
        WHERE session_id = p_session;
    RETURN found_version + 1;
END $$"""

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
        cached = self._cache.version(session_id)
        async with self._pool.acquire() as conn:
            # One statement, one snapshot: the version, and the messages unless the
            # cache already holds that version.
            row = await conn.fetchrow(
                f"SELECT s.version, CASE WHEN s.version = $2 THEN NULL ELSE "
                f"(SELECT coalesce(array_agg(m.body ORDER BY m.seq), '{{}}') "
                f"FROM {self._messages} m WHERE m.session_id = s.session_id) END "
                f"FROM {self._sessions} s WHERE s.session_id = $1",
                session_id,
                -1 if cached is None else cached,
            )
        if row is None:
            self._cache.forget(session_id)
            return None
        version, bodies = row
        if bodies is None:
            messages = self._cache.get(session_id, version)
            if messages is not None:
                return StoredSession(messages, version)
            return await self._read(session_id)  # evicted meanwhile: read it whole
        messages = [Message.model_validate_json(body) for body in bodies]
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
        async with self._pool.acquire() as conn:
            version = await conn.fetchval(
                f"SELECT {self._function}($1, $2, $3, $4, $5)",
                session_id,
                tenant_of(session_id),
                expected,
                replace,
                bodies,
            )
        if version < 0:
            raise SessionConflictError(session_id, expected or 0, -1 - version)
        return version

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
