"""Conversations in a SQLite file: the embedded default.

One writer thread per store owns the connection and serves reads and writes in the order
they come. Writes waiting together are committed in one transaction (group commit) and
each caller is answered when its own write is committed; should the group fail, every
write is retried alone, so a write that cannot be stored fails only its own turn.

``durability="sync"`` (the default): a turn returns once its history is committed.
WAL mode with ``synchronous=NORMAL``: a committed turn survives the process being killed;
an operating-system crash or power cut may lose the last few. ``durability="async"``
(write-behind) returns before the commit: a little faster, but a crash loses the turns
not yet written, and a write refused later (a conflict, a full disk) is only logged and
counted in ``write_errors``.

Several processes may share the file. Each session has a version, checked inside the
write's ``BEGIN IMMEDIATE`` transaction: a turn that read an older version stores
nothing and raises :class:`~victor.errors.SessionConflictError`. Reads check the version
in the database before serving a cached history, so no process serves a history that
another has since changed. For several hosts, use the PostgreSQL store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from victor.errors import ConfigError, SessionConflictError, SessionStoreError
from victor.protocols import ISessionStore, Message, StoredSession
from victor.protocols.tenancy import tenant_of
from victor.sessions.cache import HistoryCache

logger = logging.getLogger(__name__)

Durability = Literal["sync", "async"]

_TABLES = (
    """CREATE TABLE IF NOT EXISTS sessions (
        session_id TEXT PRIMARY KEY,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        next_seq INTEGER NOT NULL DEFAULT 0,
        version INTEGER NOT NULL DEFAULT 0,
        tenant_id TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS messages (
        session_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (session_id, seq)
    ) WITHOUT ROWID""",
)
# Columns added since the first release, with how to fill them in older files.
_MIGRATIONS = {
    "version": ("INTEGER NOT NULL DEFAULT 0", "UPDATE sessions SET version = 1"),
    "tenant_id": (
        "TEXT",
        "UPDATE sessions SET tenant_id = substr(session_id, 1, instr(session_id, ':') - 1) "
        "WHERE instr(session_id, ':') > 1",
    ),
}
# No secondary index on sessions: every index is one more page written by each turn's
# commit (measured: 57 us a commit without them, 100 us with two), while listing sessions
# is rare and scans a table of one small row per session. Older files had one: dropped.
_DROPPED_INDEXES = ("DROP INDEX IF EXISTS sessions_updated",)

_STOP = object()
_BUSY_ATTEMPTS = 8  # a write the database keeps refusing with "locked" / "busy"
_OPEN_ATTEMPTS = 40  # cold starts of several processes at once


@dataclass(slots=True)
class _Write:
    session_id: str
    messages: tuple[Message, ...]
    expected: int | None
    replace: bool
    waiter: _Waiter | None
    delete: bool = False


@dataclass(slots=True)
class _Waiter:
    """The event-loop future of a caller waiting for its job, resolved from the writer
    thread through the loop's thread-safe hand-off."""

    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]

    def abandoned(self) -> bool:
        return self.future.done()  # its turn was cancelled: nobody waits any more


def _resolve(fut: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is None:
        fut.set_result(result)
    else:
        fut.set_exception(exc)


def _settle(waiter: _Waiter | None, result: Any = None, exc: BaseException | None = None) -> None:
    if waiter is None:
        return
    with contextlib.suppress(RuntimeError):  # the caller's event loop is closed
        waiter.loop.call_soon_threadsafe(_resolve, waiter.future, result, exc)


def _busy(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and (
        "locked" in str(exc) or "busy" in str(exc)
    )


class SQLiteSessionStore(ISessionStore):
    """Session histories in one SQLite file (created with its folder if missing)."""

    _shared: ClassVar[dict[Path, list[Any]]] = {}  # resolved path -> [store, users]
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        path: str | Path,
        *,
        cache_size: int = 10_000,
        durability: Durability = "sync",
    ) -> None:
        if durability not in ("sync", "async"):
            raise ConfigError(f"durability must be 'sync' or 'async', not {durability!r}")
        self.path = Path(path)
        self.durability = durability
        self.write_errors = 0  # writes that failed with nobody waiting for them
        self._cache = HistoryCache(cache_size)  # used on the writer thread only
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._shared_key: Path | None = None
        # Set by the writer thread itself; cheaper to read than Thread.is_alive().
        self._alive = False

    @classmethod
    def shared(cls, path: str | Path, **options: Any) -> SQLiteSessionStore:
        """The store of ``path`` for this process, created on first use. Each caller
        closes it once; the last close really closes it."""
        key = Path(path).expanduser().resolve()
        with cls._shared_lock:
            entry = cls._shared.get(key)
            if entry is None or entry[0]._closed:
                store = cls(key, **options)
                store._shared_key = key
                entry = cls._shared[key] = [store, 0]
            entry[1] += 1
            return entry[0]

    # -- the writer thread -------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            if self._closed:
                raise RuntimeError(f"the session store {self.path} is closed")
            ready: Future[None] = Future()
            thread = threading.Thread(
                target=self._worker, args=(ready,), name="victor-sessions", daemon=True
            )
            thread.start()
            try:
                ready.result()
            except Exception as exc:
                thread.join()
                raise ConfigError(
                    f"cannot open the session database {self.path}: {exc} (set "
                    "VICTOR_DATA_DIR or VICTOR_SESSION_DB_PATH to a writable place)"
                ) from exc
            self._thread = thread

    async def open(self) -> None:
        if self._closed:
            raise RuntimeError(f"the session store {self.path} is closed")
        if not self._alive:
            await asyncio.to_thread(self._start)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            # Set before anything that takes a lock: several processes may be starting.
            conn.execute("PRAGMA busy_timeout=10000")
            for attempt in range(_OPEN_ATTEMPTS):
                try:
                    conn.execute("PRAGMA journal_mode=WAL")
                    conn.execute("PRAGMA synchronous=NORMAL")
                    self._create_schema(conn)
                    break
                except sqlite3.OperationalError as exc:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    if not _busy(exc) or attempt == _OPEN_ATTEMPTS - 1:
                        raise
                    time.sleep(0.025 * (attempt + 1))
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def _create_schema(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        for statement in _TABLES:
            conn.execute(statement)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(sessions)")}
        for column, (kind, fill) in _MIGRATIONS.items():
            if column not in columns:
                conn.execute(f"ALTER TABLE sessions ADD COLUMN {column} {kind}")
                conn.execute(fill)
        for statement in _DROPPED_INDEXES:
            conn.execute(statement)
        conn.execute("COMMIT")

    def _worker(self, ready: Future[None]) -> None:
        try:
            conn = self._connect()
        except Exception as exc:
            ready.set_exception(exc)
            return
        self._alive = True
        ready.set_result(None)
        try:
            self._serve(conn)
        finally:
            self._alive = False
            conn.close()

    def _serve(self, conn: sqlite3.Connection) -> None:
        while True:
            jobs = [self._jobs.get()]
            while True:  # take everything waiting: one transaction for the writes
                try:
                    jobs.append(self._jobs.get_nowait())
                except queue.Empty:
                    break
            writes: list[_Write] = []
            for job in jobs:
                if isinstance(job, _Write):
                    writes.append(job)
                    continue
                self._write_group(conn, writes)  # reads see the writes before them
                writes = []
                if job is _STOP:
                    return
                fn, waiter = job
                if waiter.abandoned():
                    continue
                try:
                    result = fn(conn)
                except Exception as exc:
                    _settle(waiter, exc=exc)
                else:
                    _settle(waiter, result)
            self._write_group(conn, writes)

    def _write_group(self, conn: sqlite3.Connection, writes: list[_Write]) -> None:
        if len(writes) == 1:
            self._write_alone(conn, writes[0])
        if len(writes) <= 1:
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
            outcomes = [self._apply_or_conflict(conn, w) for w in writes]
            conn.execute("COMMIT")
        except Exception:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            for write in writes:  # one bad write must not take the others down
                self._write_alone(conn, write)
            return
        for write, outcome in zip(writes, outcomes, strict=True):
            self._answer(write, outcome)

    def _write_alone(self, conn: sqlite3.Connection, write: _Write) -> None:
        delay = 0.01
        for attempt in range(1, _BUSY_ATTEMPTS + 1):
            try:
                conn.execute("BEGIN IMMEDIATE")
                outcome = self._apply_or_conflict(conn, write)
                conn.execute("COMMIT")
            except Exception as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                if _busy(exc) and attempt < _BUSY_ATTEMPTS:
                    time.sleep(delay)
                    delay *= 2
                    continue
                self._answer(
                    write,
                    SessionStoreError(
                        f"cannot store session "
                        f"{write.session_id!r} in {self.path}: {type(exc).__name__}: {exc}"
                    ),
                )
                return
            self._answer(write, outcome)
            return

    def _answer(self, write: _Write, outcome: Any) -> None:
        """Tell the writer how its write went; keep the cache in step with the file."""
        if isinstance(outcome, Exception):
            self._cache.forget(write.session_id)
            if write.waiter is None:
                self.write_errors += 1
                logger.error("a session write was lost: %s", outcome)
            _settle(write.waiter, exc=outcome)
            return
        if write.delete:
            self._cache.forget(write.session_id)
        else:
            self._cache.written(write.session_id, outcome, write.messages, replace=write.replace)
        _settle(write.waiter, outcome)

    def _apply_or_conflict(self, conn: sqlite3.Connection, write: _Write) -> Any:
        """Apply one write inside the open transaction. The version is checked by the
        statement that moves it on, before any message is written, so a conflict is
        returned (not raised) and leaves the transaction usable for the others."""
        session_id = write.session_id
        if write.delete:
            conn.execute("DELETE FROM messages WHERE session_id = ?", (session_id,))
            gone = conn.execute("DELETE FROM sessions WHERE session_id = ?", (session_id,))
            return gone.rowcount > 0
        bodies = [m.model_dump_json(exclude_defaults=True) for m in write.messages]
        if write.expected:  # the session must be at that version
            rows = conn.execute(
                "UPDATE sessions SET updated_at = ?, next_seq = next_seq + ?, "
                "version = version + 1 WHERE session_id = ? AND version = ? "
                "RETURNING version, next_seq",
                (time.time(), len(bodies), session_id, write.expected),
            ).fetchall()
        else:  # new (expected 0: must not exist yet), or unconditional (None)
            rows = conn.execute(
                "INSERT INTO sessions (session_id, created_at, updated_at, next_seq, version, "
                "tenant_id) VALUES (?1, ?2, ?2, ?3, 1, ?4) ON CONFLICT (session_id) DO UPDATE "
                "SET updated_at = ?2, next_seq = next_seq + ?3, version = version + 1 "
                "WHERE ?5 IS NULL RETURNING version, next_seq",
                (session_id, time.time(), len(bodies), tenant_of(session_id), write.expected),
            ).fetchall()
        if not rows:
            found = conn.execute(
                "SELECT version FROM sessions WHERE session_id = ?", (session_id,)
            ).fetchone()
            return SessionConflictError(session_id, write.expected or 0, found[0] if found else 0)
        version, next_seq = rows[0]
        first = next_seq - len(bodies)  # message numbers only grow, even past a replace
        if write.replace:
            conn.execute(
                "DELETE FROM messages WHERE session_id = ? AND seq < ?", (session_id, first)
            )
        conn.executemany(
            "INSERT INTO messages (session_id, seq, body) VALUES (?, ?, ?)",
            [(session_id, first + i, body) for i, body in enumerate(bodies)],
        )
        return version

    def _read(self, conn: sqlite3.Connection, session_id: str) -> StoredSession | None:
        row = conn.execute(
            "SELECT version FROM sessions WHERE session_id = ?", (session_id,)
        ).fetchone()
        if row is None:
            self._cache.forget(session_id)
            return None
        cached = self._cache.get(session_id, row[0])
        if cached is not None:
            return StoredSession(cached, row[0])
        conn.execute("BEGIN")  # the version and the messages of one snapshot
        try:
            row = conn.execute(
                "SELECT version FROM sessions WHERE session_id = ?", (session_id,)
            ).fetchone()
            bodies = conn.execute(
                "SELECT body FROM messages WHERE session_id = ? ORDER BY seq", (session_id,)
            ).fetchall()
        finally:
            conn.execute("COMMIT")
        if row is None:
            return None
        messages = [Message.model_validate_json(b[0]) for b in bodies]
        self._cache.put(session_id, row[0], messages)
        return StoredSession(list(messages), row[0])

    async def _call(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        await self.open()
        loop = asyncio.get_running_loop()
        waiter = _Waiter(loop, loop.create_future())
        self._jobs.put((fn, waiter))
        return await waiter.future

    async def _submit(self, write: _Write) -> Any:
        await self.open()
        if self.durability == "async" and not write.delete:
            self._jobs.put(write)
            return None
        loop = asyncio.get_running_loop()
        write.waiter = _Waiter(loop, loop.create_future())
        self._jobs.put(write)
        return await write.waiter.future

    # -- ISessionStore -----------------------------------------------------------------

    async def read(self, session_id: str) -> StoredSession | None:
        return await self._call(lambda conn: self._read(conn, session_id))

    async def write(
        self,
        session_id: str,
        messages: Sequence[Message],
        *,
        expected_version: int | None = None,
        replace: bool = False,
    ) -> int:
        version = await self._submit(
            _Write(session_id, tuple(messages), expected_version, replace, None)
        )
        # Write-behind: the version it will reach, if nothing else writes first.
        return version if version is not None else (expected_version or 0) + 1

    async def delete(self, session_id: str) -> bool:
        return bool(await self._submit(_Write(session_id, (), None, False, None, delete=True)))

    async def list_sessions(self, limit: int = 100, *, tenant_id: str | None = None) -> list[str]:
        def read(conn: sqlite3.Connection) -> list[str]:
            if tenant_id is None:
                rows = conn.execute(
                    "SELECT session_id FROM sessions ORDER BY updated_at DESC LIMIT ?", (limit,)
                )
            else:
                rows = conn.execute(
                    "SELECT session_id FROM sessions WHERE tenant_id = ? "
                    "ORDER BY updated_at DESC LIMIT ?",
                    (tenant_id, limit),
                )
            return [r[0] for r in rows]

        return await self._call(read)

    async def flush(self) -> None:
        if self._thread is not None and not self._closed:
            await self._call(lambda conn: None)

    async def aclose(self) -> None:
        if self._closed:
            return
        if self._shared_key is not None:
            with self._shared_lock:
                entry = self._shared.get(self._shared_key)
                if entry is not None and entry[0] is self:
                    entry[1] -= 1
                    if entry[1] > 0:
                        return  # others still use it
                    del self._shared[self._shared_key]
        self._closed = True
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._jobs.put(_STOP)
            await asyncio.to_thread(thread.join)
