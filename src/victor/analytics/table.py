"""The events table, the same in SQLite and PostgreSQL: idempotent statements run when an
exporter first connects. A new version of Victor appends to them, so upgrading Victor
upgrades the table."""

from __future__ import annotations

from victor.protocols.sql import MAX_LENGTH, check_ident, quote_ident

DEFAULT_TABLE = "victor_analytics_events"
#: Names derived from the table's (indexes, view) add at most this many characters.
_LONGEST_SUFFIX = len("_type_ts")


def check_table(table: str) -> str:
    """The name, checked with those derived from it (PostgreSQL truncates long names)."""
    return check_ident(table, "table", max_length=MAX_LENGTH - _LONGEST_SUFFIX)


def _columns(text: str, real: str, integer: str, boolean: str, ts: str, json: str) -> str:
    return f"""
        event_id {text} PRIMARY KEY,
        type {text} NOT NULL,
        session_id {text},
        tenant_id {text},
        experiment {text},
        variant {text},
        ts {ts} NOT NULL,
        model {text},
        tool {text},
        input_tokens {integer},
        output_tokens {integer},
        total_tokens {integer},
        cost_usd {real},
        latency_ms {real},
        is_error {boolean} NOT NULL DEFAULT {"0" if boolean == "INTEGER" else "false"},
        data {json} NOT NULL DEFAULT '{{}}'
    """


def sqlite_schema(table: str) -> list[str]:
    """``ts`` is Unix seconds (REAL). One index: an index on (type, ts) halves the insert
    rate, and reports scan a time range anyway. The view shows readable times."""
    t = quote_ident(table)
    cols = _columns("TEXT", "REAL", "INTEGER", "INTEGER", "REAL", "TEXT")
    return [
        f"CREATE TABLE IF NOT EXISTS {t} ({cols})",
        f"CREATE INDEX IF NOT EXISTS {quote_ident(table + '_ts')} ON {t} (ts)",
        f"CREATE VIEW IF NOT EXISTS {quote_ident(table + '_v')} AS "
        f"SELECT strftime('%Y-%m-%dT%H:%M:%fZ', ts, 'unixepoch') AS time, * FROM {t}",
    ]


def postgres_schema(schema: str, table: str) -> tuple[list[str], str]:
    """The statements, and the object the last one creates: if it exists, all is done."""
    t = f"{quote_ident(schema)}.{quote_ident(table)}"
    cols = _columns("text", "double precision", "bigint", "boolean", "timestamptz", "jsonb")
    return [
        f"CREATE TABLE IF NOT EXISTS {t} ({cols})",
        f"CREATE INDEX IF NOT EXISTS {quote_ident(table + '_ts')} ON {t} (ts)",
        f"CREATE INDEX IF NOT EXISTS {quote_ident(table + '_type_ts')} ON {t} (type, ts)",
    ], f"{quote_ident(schema)}.{quote_ident(table + '_type_ts')}"
