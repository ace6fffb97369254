"""The outbox: batches waiting for remote destinations, in a local SQLite file.

A batch is written in one transaction, as JSON lines, one row per destination, and deleted
once stored; while a destination is down, or after a crash, it waits for the next forwarder
(in this process or the next). WAL with ``synchronous=NORMAL`` survives a killed process.
All methods block: the coordinator calls them from its one outbox thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import NamedTuple

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "destination TEXT NOT NULL, events BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS outbox_destination ON outbox (destination, id)",
)


class DestinationStatus(NamedTuple):
    destination: str
    batches: int
    bytes: int


class Outbox:
    """One SQLite file, opened on first use."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self._conn: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30.0)  # `with conn`: one transaction
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            for statement in _SCHEMA:
                conn.execute(statement)
            self._conn = conn
        return self._conn

    def put(self, batches: Sequence[tuple[str, bytes]]) -> None:
        """One batch for each destination, ``(destination, payload)``, in one transaction."""
        with self._db() as conn:
            conn.executemany("INSERT INTO outbox (destination, events) VALUES (?, ?)", batches)

    def oldest(self, destination: str, limit: int = 1) -> list[tuple[int, bytes]]:
        """The destination's oldest waiting batches, ``(id, payload)``, at most ``limit``."""
        return (
            self._db()
            .execute(
                "SELECT id, events FROM outbox WHERE destination = ? ORDER BY id LIMIT ?",
                (destination, limit),
            )
            .fetchall()
        )

    def done(self, batch_ids: Sequence[int], unreadable: Collection[int] = ()) -> None:
        """Delete delivered batches. Those with unreadable lines are set aside instead, under
        ``<destination>#unreadable``: never sent again, never deleted."""
        with self._db() as conn:
            rows = [(i,) for i in batch_ids if i not in unreadable]
            conn.executemany("DELETE FROM outbox WHERE id = ?", rows)
            aside = "UPDATE outbox SET destination = destination || '#unreadable' WHERE id = ?"
            conn.executemany(aside, [(i,) for i in unreadable])

    def status(self) -> list[DestinationStatus]:
        """Batches and bytes waiting, per destination."""
        if self._conn is None and not self.path.exists():
            return []
        rows = self._db().execute(
            "SELECT destination, COUNT(*), SUM(length(events)) FROM outbox "
            "GROUP BY destination ORDER BY destination"
        )
        return [DestinationStatus(*row) for row in rows]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
