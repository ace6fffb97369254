"""Conversations in a SQLite file: the embedded default.

Writes are handed to one writer thread that commits them in groups (WAL mode), so a chat
turn never waits for the disk; reads of sessions this process has seen come from an LRU
cache, and the others from the database through the same thread, unless a Bloom filter of
the stored session ids says the session is new. ``flush()`` and
``aclose()`` wait until every accepted write is committed. Pass ``wait_for_commit=True``
to make each turn wait for its own commit instead (about 0.1 ms more per turn).

One process owns a file's sessions: the cache and the filter do not see writes from other
processes. Several processes sharing conversations want the PostgreSQL store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from victor.protocols import ISessionStore, Message
from victor.sessions._bloom import BloomFilter

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    next_seq INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sessions_updated ON sessions (updated_at);
CREATE TABLE IF NOT EXISTS messages (
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;
"""

_STOP = object()


class SQLiteSessionStore(ISessionStore):
    """Session histories in one SQLite file (created with its folder if missing)."""

    def __init__(
        self,
        path: str | Path,
        *,
        cache_size: int = 10_000,
        wait_for_commit: bool = False,
    ) -> None:
        self.path = Path(path)
        self.cache_size = cache_size
        self.wait_for_commit = wait_for_commit
        self.write_errors = 0
        self._cache: OrderedDict[str, list[Message]] = OrderedDict()
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._known: BloomFilter | None = None

    # -- the writer thread -------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            if self._closed:
                raise RuntimeError("the session store is closed")
            ready: Future[None] = Future()
            self._thread = threading.Thread(
                target=self._worker, args=(ready,), name="victor-sessions", daemon=True
            )
            self._thread.start()
        ready.result()

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.executescript(_SCHEMA)
        return conn

    def _worker(self, ready: Future[None]) -> None:
        try:
            conn = self._connect()
        except Exception as exc:
            ready.set_exception(exc)
            return
        try:
            ids = [row[0] for row in conn.execute("SELECT session_id FROM sessions")]
            known = BloomFilter(max(1_000_000, 2 * len(ids)))
            for session_id in ids:
                known.add(session_id)
            self._known = known
        except Exception as exc:
            ready.set_exception(exc)
            return
        ready.set_result(None)
        stop = False
        while not stop:
            jobs = [self._jobs.get()]
            while True:  # take everything waiting: one transaction for the group
                try:
                    jobs.append(self._jobs.get_nowait())
                except queue.Empty:
                    break
            writes = []
            for job in jobs:
                if job is _STOP:
                    stop = True
                elif job[0] == "write":
                    writes.append(job)
                else:  # ("call", fn, future): reads and barriers see earlier writes
                    self._commit(conn, writes)
                    writes = []
                    _, fn, fut = job
                    try:
                        fut.set_result(fn(conn))
                    except Exception as exc:
                        fut.set_exception(exc)
            self._commit(conn, writes)
        conn.close()

    def _commit(self, conn: sqlite3.Connection, writes: list[Any]) -> None:
        if not writes:
            return
        now = time.time()
        try:
            conn.execute("BEGIN IMMEDIATE")
            for _, op, session_id, messages, _fut in writes:
                if op == "delete" or op == "replace":
                    conn.execute("DELETE FROM messages WHERE session_id = ?", (session_id,))
                    conn.execute("DELETE FROM sessions WHERE session_id = ?", (session_id,))
                    if op == "delete":
                        continue
                row = conn.execute(
                    "SELECT next_seq FROM sessions WHERE session_id = ?", (session_id,)
                ).fetchone()
                seq = row[0] if row else 0
                conn.executemany(
                    "INSERT INTO messages (session_id, seq, body) VALUES (?, ?, ?)",
                    [
                        (session_id, seq + i, m.model_dump_json(exclude_defaults=True))
                        for i, m in enumerate(messages)
                    ],
                )
                conn.execute(
                    "INSERT INTO sessions (session_id, created_at, updated_at, next_seq) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (session_id) DO UPDATE SET "
                    "updated_at = excluded.updated_at, next_seq = excluded.next_seq",
                    (session_id, now, now, seq + len(messages)),
                )
            conn.execute("COMMIT")
        except Exception as exc:
            self.write_errors += 1
            logger.exception("could not store %d session writes in %s", len(writes), self.path)
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            for *_, fut in writes:
                if fut is not None and not fut.done():
                    fut.set_exception(exc)
            return
        for *_, fut in writes:
            if fut is not None and not fut.done():
                fut.set_result(None)

    async def _call(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        if self._thread is None:
            await asyncio.to_thread(self._start)
        fut: Future[Any] = Future()
        self._jobs.put(("call", fn, fut))
        return await asyncio.wrap_future(fut)

    async def _write(self, op: str, session_id: str, messages: Sequence[Message]) -> None:
        if self._thread is None:
            await asyncio.to_thread(self._start)
        fut: Future[None] | None = Future() if self.wait_for_commit else None
        self._jobs.put(("write", op, session_id, tuple(messages), fut))
        if fut is not None:
            await asyncio.wrap_future(fut)

    # -- the cache ---------------------------------------------------------------------

    def _remember(self, session_id: str, history: list[Message]) -> None:
        if self._known is not None and session_id not in self._cache:
            self._known.add(session_id)
        self._cache[session_id] = history
        self._cache.move_to_end(session_id)
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    # -- ISessionStore -----------------------------------------------------------------

    async def load(self, session_id: str) -> list[Message] | None:
        history = self._cache.get(session_id)
        if history is not None:
            self._cache.move_to_end(session_id)
            return list(history)
        if self._thread is None:
            await asyncio.to_thread(self._start)
        if self._known is not None and session_id not in self._known:
            return None

        def read(conn: sqlite3.Connection) -> list[str] | None:
            rows = conn.execute(
                "SELECT body FROM messages WHERE session_id = ? ORDER BY seq", (session_id,)
            ).fetchall()
            if rows:
                return [r[0] for r in rows]
            exists = conn.execute(
                "SELECT 1 FROM sessions WHERE session_id = ?", (session_id,)
            ).fetchone()
            return [] if exists else None

        bodies = await self._call(read)
        if bodies is None:
            return None
        history = [Message.model_validate_json(b) for b in bodies]
        self._remember(session_id, history)
        return list(history)

    async def append(self, session_id: str, messages: Sequence[Message]) -> None:
        history = self._cache.get(session_id)
        if history is not None:  # otherwise the next load reads it back, in order
            history.extend(messages)
            self._cache.move_to_end(session_id)
        elif self._known is not None:
            self._known.add(session_id)
        await self._write("append", session_id, messages)

    async def create(self, session_id: str, messages: Sequence[Message]) -> None:
        self._remember(session_id, list(messages))
        # Appended, not replaced: should the session exist after all, nothing is lost.
        await self._write("append", session_id, messages)

    async def replace(self, session_id: str, messages: Sequence[Message]) -> None:
        self._remember(session_id, list(messages))
        await self._write("replace", session_id, messages)

    async def delete(self, session_id: str) -> bool:
        self._cache.pop(session_id, None)

        def exists(conn: sqlite3.Connection) -> bool:
            return (
                conn.execute(
                    "SELECT 1 FROM sessions WHERE session_id = ?", (session_id,)
                ).fetchone()
                is not None
            )

        found = await self._call(exists)
        await self._write("delete", session_id, ())
        return bool(found)

    async def list_sessions(self, limit: int = 100) -> list[str]:
        def read(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT session_id FROM sessions ORDER BY updated_at DESC LIMIT ?", (limit,)
            ).fetchall()
            return [r[0] for r in rows]

        return await self._call(read)

    async def flush(self) -> None:
        if self._thread is not None:
            await self._call(lambda conn: None)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        thread = self._thread
        if thread is not None:
            self._jobs.put(_STOP)
            await asyncio.to_thread(thread.join)
