"""The embedded default store: a SQLite file, written from one worker thread."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from victor.analytics.encoding import COLUMNS, encode_row, split_encoded
from victor.analytics.exporters.base import BlockingWriteExporter, partial_result
from victor.analytics.table import DEFAULT_TABLE, check_table, sqlite_schema
from victor.protocols.analytics import AnalyticsEvent, ExportResult
from victor.protocols.sql import quote_ident


def open_sqlite(path: Path, table: str, *, timeout: float = 30.0) -> sqlite3.Connection:
    """Open (creating the table if needed) an analytics database. WAL lets reports read
    while the exporter writes; ``synchronous=NORMAL`` is durable across process crashes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA cache_size=-32768")  # 32 MiB: fewer page reads as the table grows
    conn.execute("BEGIN IMMEDIATE")
    with conn:  # one transaction: commits, or rolls back on an error
        for statement in sqlite_schema(table):
            conn.execute(statement)
    return conn


class SQLiteAnalyticsExporter(BlockingWriteExporter):
    """Stores events in a SQLite file (default ``Settings().data_dir / "analytics.db"``),
    the embedded default and a durable store in itself: one ``executemany`` per batch and
    transaction, ``INSERT OR IGNORE`` on the ``event_id`` key so replays are harmless."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        table: str = DEFAULT_TABLE,
        name: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        if path is None:
            from victor.config import Settings

            path = Settings().data_dir / "analytics.db"
        self.path = Path(path).expanduser()
        self.table = check_table(table)
        self.destination = f"sqlite:{self.path.resolve()}#{table}"
        self.timeout = timeout
        self.name = name or self.name
        self._conn: sqlite3.Connection | None = None
        columns, placeholders = ", ".join(COLUMNS), ", ".join("?" for _ in COLUMNS)
        self._insert = (
            f"INSERT OR IGNORE INTO {quote_ident(table)} ({columns}) VALUES ({placeholders})"
        )

    def _export(self, events: list[AnalyticsEvent]) -> ExportResult:
        rows, rejected = split_encoded(events, encode_row, epoch=True)
        if rows:
            if self._conn is None:
                self._conn = open_sqlite(self.path, self.table, timeout=self.timeout)
            self._conn.execute("BEGIN")
            with self._conn:  # one transaction: commits, or rolls back on an error
                self._conn.executemany(self._insert, rows)
        return partial_result(len(rows), rejected)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
