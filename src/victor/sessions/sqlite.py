"""Conversations in a SQLite file: the embedded default.

Writes are handed to one writer thread that commits them in groups (WAL mode), so a chat
turn never waits for the disk; reads of sessions this process has seen come from an LRU
cache, and the others from the database through the same thread, unless a Bloom filter of
the stored session ids says the session is new. ``flush()`` and ``aclose()`` wait until
every accepted write is committed. Pass ``wait_for_commit=True`` to make each turn wait
for its own commit instead (about 0.1 ms more per turn).

One store object owns a file's sessions: the cache and the filter do not see writes made
through another. :meth:`SQLiteSessionStore.shared` hands every user of a path in this
process the same store; several processes sharing conversations want the PostgreSQL store.
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
from typing import Any, ClassVar

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
_COMMIT_ATTEMPTS = 5


def _settle(fut: Future[Any] | None, result: Any = None, exc: BaseException | None = None) -> None:
    """Resolve a future unless its waiter gave up (a cancelled turn)."""
    if fut is None or fut.done():
        return
    with contextlib.suppress(Exception):  # cancelled between the check and now
        if exc is None:
            fut.set_result(result)
        else:
            fut.set_exception(exc)


class SQLiteSessionStore(ISessionStore):
    """Session histories in one SQLite file (created with its folder if missing)."""

    _shared: ClassVar[dict[Path, list[Any]]] = {}  # resolved path -> [store, users]
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

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
        self._shared_key: Path | None = None
        # Set by the writer thread itself; cheaper to read than Thread.is_alive() on every
        # write of the hot path.
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
                raise RuntimeError(f"cannot open the session database {self.path}: {exc}") from exc
            self._thread = thread

    async def _ensure_started(self) -> None:
        if self._closed:
            raise RuntimeError(f"the session store {self.path} is closed")
        if not self._alive:
            await asyncio.to_thread(self._start)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.executescript(_SCHEMA)
        return conn

    def _worker(self, ready: Future[None]) -> None:
        try:
            conn = self._connect()
            ids = [row[0] for row in conn.execute("SELECT session_id FROM sessions")]
            known = BloomFilter(max(1_000_000, 2 * len(ids)))
            for session_id in ids:
                known.add(session_id)
            for session_id in self._cache:  # written before the filter existed
                known.add(session_id)
            self._known = known
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
            while True:  # take everything waiting: one transaction for the group
                try:
                    jobs.append(self._jobs.get_nowait())
                except queue.Empty:
                    break
            writes: list[Any] = []
            stop = False
            for job in jobs:
                if job is _STOP:
                    stop = True
                elif job[0] == "write":
                    writes.append(job)
                else:  # ("call", fn, future): reads and barriers see earlier writes
                    self._commit(conn, writes)
                    writes = []
                    _, fn, fut = job
                    if not fut.set_running_or_notify_cancel():
                        continue  # its turn was cancelled: nobody waits for it
                    try:
                        result = fn(conn)
                    except Exception as exc:
                        _settle(fut, exc=exc)
                    else:
                        _settle(fut, result)
            self._commit(conn, writes)
            if stop:
                return

    def _commit(self, conn: sqlite3.Connection, writes: list[Any]) -> None:
        if not writes:
            return
        delay = 0.05
        for attempt in range(1, _COMMIT_ATTEMPTS + 1):
            try:
                self._apply(conn, writes)
            except Exception as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                if attempt < _COMMIT_ATTEMPTS:
                    time.sleep(delay)
                    delay *= 2
                    continue
                self.write_errors += len(writes)
                logger.error(
                    "could not store %d session writes in %s after %d attempts: %s",
                    len(writes),
                    self.path,
                    attempt,
                    exc,
                )
                for *_, fut in writes:
                    _settle(fut, exc=exc)
                return
            for *_, fut in writes:
                _settle(fut)
            return

    def _apply(self, conn: sqlite3.Connection, writes: list[Any]) -> None:
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        for _, op, session_id, messages, _fut in writes:
            if op in ("delete", "replace"):
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

    async def _call(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        await self._ensure_started()
        fut: Future[Any] = Future()
        self._jobs.put(("call", fn, fut))
        return await asyncio.wrap_future(fut)

    async def _write(self, op: str, session_id: str, messages: Sequence[Message]) -> None:
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
        await self._ensure_started()
        if self._known is not None and session_id not in self._known:
            return None

        def read(conn: sqlite3.Connection) -> list[Message] | None:
            rows = conn.execute(
                "SELECT body FROM messages WHERE session_id = ? ORDER BY seq", (session_id,)
            ).fetchall()
            if (
                not rows
                and conn.execute(
                    "SELECT 1 FROM sessions WHERE session_id = ?", (session_id,)
                ).fetchone()
                is None
            ):
                return None
            return [Message.model_validate_json(r[0]) for r in rows]

        history = await self._call(read)
        if history is None:
            return None
        self._remember(session_id, history)
        return list(history)

    async def append(self, session_id: str, messages: Sequence[Message]) -> None:
        await self._ensure_started()
        await self._write("append", session_id, messages)
        history = self._cache.get(session_id)
        if history is not None:  # otherwise the next load reads it back, in order
            history.extend(messages)
            self._cache.move_to_end(session_id)
        elif self._known is not None:
            self._known.add(session_id)

    async def create(self, session_id: str, messages: Sequence[Message]) -> None:
        await self._ensure_started()
        # Appended, not replaced: should the session exist after all, nothing is lost.
        await self._write("append", session_id, messages)
        self._remember(session_id, list(messages))

    async def replace(self, session_id: str, messages: Sequence[Message]) -> None:
        await self._ensure_started()
        await self._write("replace", session_id, messages)
        self._remember(session_id, list(messages))

    async def delete(self, session_id: str) -> bool:
        def exists(conn: sqlite3.Connection) -> bool:
            return (
                conn.execute(
                    "SELECT 1 FROM sessions WHERE session_id = ?", (session_id,)
                ).fetchone()
                is not None
            )

        found = await self._call(exists)
        self._cache.pop(session_id, None)
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
