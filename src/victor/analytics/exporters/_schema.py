"""The events table, the same in SQLite and PostgreSQL, and its numbered migrations.

Each store records the migrations it applied in ``<table>_schema_version``; an exporter
applies the missing ones when it first connects, so upgrading Victor upgrades the table.
"""

from __future__ import annotations

import re

DEFAULT_TABLE = "victor_analytics_events"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def ident(name: str) -> str:
    """A quoted SQL identifier; names are checked, never interpolated as given."""
    if not _IDENT.match(name):
        raise ValueError(f"invalid SQL identifier {name!r}: use letters, digits and _")
    return f'"{name}"'


#: The longest suffix of a name derived from the table's (indexes, view, migrations).
_LONGEST_SUFFIX = "_schema_version"


def check_table(table: str) -> str:
    """Check a table name and every name derived from it (PostgreSQL truncates names
    past 63 bytes, so a long table name would break its ``_schema_version`` table):
    a clear error when the exporter is built, not a failure at every export."""
    ident(table)
    if len(table + _LONGEST_SUFFIX) > 63:
        raise ValueError(
            f"table name {table!r} is too long: {len(table)} characters, at most "
            f"{63 - len(_LONGEST_SUFFIX)} (the migrations table "
            f"{table + _LONGEST_SUFFIX!r} must fit in 63 characters)"
        )
    return table


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


def sqlite_migrations(table: str) -> list[list[str]]:
    """Statements of each SQLite migration; ``ts`` is Unix seconds (REAL)."""
    t = ident(table)
    cols = _columns("TEXT", "REAL", "INTEGER", "INTEGER", "REAL", "TEXT")
    return [
        [
            f"CREATE TABLE IF NOT EXISTS {t} ({cols})",
            f"CREATE INDEX IF NOT EXISTS {ident(table + '_ts')} ON {t} (ts)",
        ],
        # A view with readable times for ad-hoc SQL. (No second index: an index on
        # (type, ts) halves the insert rate, and reports scan a time range anyway.)
        [
            f"CREATE VIEW IF NOT EXISTS {ident(table + '_v')} AS "
            f"SELECT strftime('%Y-%m-%dT%H:%M:%fZ', ts, 'unixepoch') AS time, * FROM {t}"
        ],
    ]


def postgres_migrations(schema: str, table: str) -> list[list[str]]:
    """Statements of each PostgreSQL migration."""
    t = f"{ident(schema)}.{ident(table)}"
    cols = _columns("text", "double precision", "bigint", "boolean", "timestamptz", "jsonb")
    return [
        [
            f"CREATE TABLE IF NOT EXISTS {t} ({cols})",
            f"CREATE INDEX IF NOT EXISTS {ident(table + '_ts')} ON {t} (ts)",
        ],
        [f"CREATE INDEX IF NOT EXISTS {ident(table + '_type_ts')} ON {t} (type, ts)"],
    ]
