"""The assignment table: the variant each unit first got, kept for good.

Without it a unit's variant is recomputed from the hash, so changing weights moves some
units. With it, a unit keeps the variant it was first given; units not yet assigned
follow the current weights. A unit outside the experiment (coverage, namespace,
holdout) is not stored, so ramping traffic up only adds units.

The first writer wins: SQLite's ``INSERT OR IGNORE`` and PostgreSQL's
``ON CONFLICT DO NOTHING`` settle two processes assigning the same unit at once.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from victor.errors import ConfigError
from victor.experiments.experiment import Experiment

__all__ = ["AssignmentTable", "PostgresAssignmentTable", "SQLiteAssignmentTable"]

_CREATE = """CREATE TABLE IF NOT EXISTS experiment_assignments (
    experiment TEXT NOT NULL,
    unit_id TEXT NOT NULL,
    variant TEXT NOT NULL,
    assigned_at {timestamp},
    PRIMARY KEY (experiment, unit_id)
)"""


class AssignmentTable(Protocol):
    async def assign(self, experiment: Experiment, unit_id: str) -> str | None:
        """The unit's stored variant, or the hash's (stored now), or None."""
        ...

    async def aclose(self) -> None: ...


class SQLiteAssignmentTable:
    """The table in a SQLite file (one host; several processes may share the file)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # one connection, used from worker threads

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(_CREATE.format(timestamp="REAL"))
            connection.commit()
            self._connection = connection
        return self._connection

    def _assign(self, experiment: str, unit_id: str, variant: str) -> str:
        with self._lock:
            connection = self._connect()
            with connection:
                connection.execute(
                    "INSERT OR IGNORE INTO experiment_assignments "
                    "(experiment, unit_id, variant, assigned_at) VALUES (?, ?, ?, ?)",
                    (experiment, unit_id, variant, time.time()),
                )
                row = connection.execute(
                    "SELECT variant FROM experiment_assignments "
                    "WHERE experiment = ? AND unit_id = ?",
                    (experiment, unit_id),
                ).fetchone()
            return row[0]

    def _stored(self, experiment: str, unit_id: str) -> str | None:
        with self._lock:
            row = (
                self._connect()
                .execute(
                    "SELECT variant FROM experiment_assignments "
                    "WHERE experiment = ? AND unit_id = ?",
                    (experiment, unit_id),
                )
                .fetchone()
            )
            return row[0] if row else None

    async def assign(self, experiment: Experiment, unit_id: str) -> str | None:
        if experiment.status != "running":
            return None
        variant = experiment.assign(unit_id)
        if variant is None:
            return await asyncio.to_thread(self._stored, experiment.name, unit_id)
        return await asyncio.to_thread(self._assign, experiment.name, unit_id, variant)

    async def aclose(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


class PostgresAssignmentTable:
    """The table in PostgreSQL, for several hosts (needs ``asyncpg``:
    ``pip install 'victor-orchestrator[postgres]'``)."""

    def __init__(self, dsn: str, *, schema: str = "public") -> None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", schema):
            raise ConfigError(f"PostgresAssignmentTable: schema {schema!r} is not a plain name")
        self.dsn = dsn
        self.schema = schema
        self._pool: Any = None
        self._opening = asyncio.Lock()

    async def _open(self) -> Any:
        async with self._opening:
            if self._pool is None:
                try:
                    import asyncpg
                except ImportError:
                    raise ConfigError(
                        "the PostgreSQL assignment table needs asyncpg: "
                        "pip install 'victor-orchestrator[postgres]'"
                    ) from None
                pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=4)
                async with pool.acquire() as connection:
                    await connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
                    await connection.execute(
                        _CREATE.replace(
                            "experiment_assignments", f'"{self.schema}".experiment_assignments'
                        ).format(timestamp="TIMESTAMPTZ DEFAULT now()")
                    )
                self._pool = pool
        return self._pool

    async def assign(self, experiment: Experiment, unit_id: str) -> str | None:
        if experiment.status != "running":
            return None
        pool = await self._open()
        table = f'"{self.schema}".experiment_assignments'
        variant = experiment.assign(unit_id)
        if variant is None:
            return await pool.fetchval(
                f"SELECT variant FROM {table} WHERE experiment = $1 AND unit_id = $2",
                experiment.name,
                unit_id,
            )
        # One round trip: insert, or read the row the first writer stored. A writer that
        # committed after this statement began is not visible to it: ask once more.
        for _ in range(2):
            stored = await pool.fetchval(
                f"""WITH inserted AS (
                    INSERT INTO {table} (experiment, unit_id, variant) VALUES ($1, $2, $3)
                    ON CONFLICT (experiment, unit_id) DO NOTHING RETURNING variant
                )
                SELECT variant FROM inserted
                UNION ALL
                SELECT variant FROM {table} WHERE experiment = $1 AND unit_id = $2
                LIMIT 1""",
                experiment.name,
                unit_id,
                variant,
            )
            if stored is not None:
                return stored
        return variant

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
