"""The events of one experiment, read from the analytics store (SQLite or PostgreSQL):
one row per session, the turns' latencies, and the outcomes (feedback, metrics,
assignments)."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from victor.analytics.events import (
    CHAT_COMPLETE,
    ERROR,
    EXPERIMENT_ASSIGNMENT,
    FEEDBACK,
    METRIC,
    TOKEN_USAGE,
    TOOL_CALL,
)
from victor.analytics.table import DEFAULT_TABLE
from victor.protocols.sql import quote_ident

_SESSIONS_SQL = f"""
SELECT session_id, MAX(variant),
    SUM(CASE WHEN type = '{CHAT_COMPLETE}' THEN 1 ELSE 0 END),
    SUM(CASE WHEN type = '{CHAT_COMPLETE}' THEN latency_ms END),
    SUM(CASE WHEN type = '{TOKEN_USAGE}' THEN total_tokens ELSE 0 END),
    SUM(CASE WHEN type = '{TOKEN_USAGE}' THEN cost_usd END),
    SUM(CASE WHEN type = '{ERROR}' THEN 1 ELSE 0 END),
    SUM(CASE WHEN type = '{TOOL_CALL}' THEN 1 ELSE 0 END),
    SUM(CASE WHEN type = '{TOOL_CALL}' AND is_error THEN 1 ELSE 0 END),
    COUNT(CASE WHEN type = '{CHAT_COMPLETE}' THEN latency_ms END),
    MAX(tenant_id)
FROM {{table}} WHERE experiment = {{p}} AND variant IS NOT NULL GROUP BY session_id
"""
_TURNS_SQL = (
    "SELECT variant, latency_ms FROM {table} WHERE experiment = {p} "
    f"AND type = '{CHAT_COMPLETE}' AND latency_ms IS NOT NULL AND variant IS NOT NULL"
)
_OUTCOMES_SQL = (
    "SELECT session_id, variant, type, data FROM {table} WHERE experiment = {p} "
    f"AND type IN ('{FEEDBACK}', '{METRIC}', '{EXPERIMENT_ASSIGNMENT}') "
    "AND variant IS NOT NULL"
)


@dataclass(slots=True)
class ExperimentEvents:
    sessions: list[tuple[Any, ...]]
    turns: list[tuple[Any, ...]]
    outcomes: list[tuple[Any, ...]]


def _read_sqlite(where: str | Path, table: str, name: str) -> ExperimentEvents:
    path = Path(where).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"no analytics database at {path}")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)
    try:
        run = [
            conn.execute(sql.format(table=quote_ident(table), p="?"), (name,)).fetchall()
            for sql in (_SESSIONS_SQL, _TURNS_SQL, _OUTCOMES_SQL)
        ]
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            raise LookupError(f"{path} has no table {table!r}") from None
        raise
    finally:
        conn.close()
    return ExperimentEvents(*run)


async def _read_postgres(url: str, name: str) -> ExperimentEvents:
    import asyncpg

    from victor.analytics.reports import AnalyticsReader, PostgresReader

    reader = AnalyticsReader.from_url(url)
    assert isinstance(reader, PostgresReader)
    table = f"{quote_ident(reader.schema)}.{quote_ident(reader.table)}"
    conn = await asyncpg.connect(reader.dsn, timeout=10)
    try:
        run = []
        for sql in (_SESSIONS_SQL, _TURNS_SQL, _OUTCOMES_SQL):
            rows = await conn.fetch(sql.format(table=table, p="$1"), name)
            run.append([tuple(r) for r in rows])
    except asyncpg.UndefinedTableError:
        raise LookupError(f"no table {table} in the database") from None
    finally:
        await conn.close()
    return ExperimentEvents(*run)


async def read_experiment_events(store: str | Path | None, name: str) -> ExperimentEvents:
    text = str(store) if store is not None else None
    if text is None:
        from victor.config import Settings

        return await asyncio.to_thread(
            _read_sqlite, Settings().data_dir / "analytics.db", DEFAULT_TABLE, name
        )
    if text.startswith(("postgresql://", "postgres://")):
        return await _read_postgres(text, name)
    if text.startswith("sqlite://"):
        text = text[len("sqlite://") :]
    return await asyncio.to_thread(_read_sqlite, text, DEFAULT_TABLE, name)
