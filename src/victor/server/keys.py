"""API keys of tenants, stored hashed: SQLite (a file) or PostgreSQL (several processes).

A key is ``vk-`` and 43 random URL-safe characters; only its SHA-256 is stored (a random
key of that length needs no slow hash), with a short prefix to recognise it by. Each key
belongs to one tenant and may carry allowed models, a spend budget per period and
rpm/tpm limits. Spend is added up per key and period in the same database, so every
process sharing it enforces one budget.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import sqlite3
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from victor.errors import ConfigError
from victor.protocols.tenancy import SEPARATOR

__all__ = [
    "PERIODS",
    "ApiKey",
    "KeyStore",
    "PostgresKeyStore",
    "SQLiteKeyStore",
    "hash_key",
    "key_store_from_url",
    "period_label",
]

KEY_PREFIX = "vk-"
Period = Literal["day", "month", "total"]
PERIODS: tuple[Period, ...] = ("day", "month", "total")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def period_label(period: str, now: datetime | None = None) -> str:
    """The spend bucket of ``period`` now: ``2026-11-30``, ``2026-11`` or ``total``."""
    now = now or datetime.now(UTC)
    if period == "day":
        return now.strftime("%Y-%m-%d")
    if period == "month":
        return now.strftime("%Y-%m")
    return "total"


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key's record (never the key itself)."""

    id: str
    tenant_id: str
    name: str
    prefix: str
    created_at: str
    allowed_models: tuple[str, ...] | None = None
    budget_usd: float | None = None
    budget_period: Period = "month"
    rpm: int | None = None
    tpm: int | None = None
    revoked_at: str | None = None
    spent_usd: float = field(default=0.0, compare=False)  # in the current period

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "name": self.name,
            "prefix": self.prefix,
            "created_at": self.created_at,
            "allowed_models": list(self.allowed_models) if self.allowed_models else None,
            "budget_usd": self.budget_usd,
            "budget_period": self.budget_period,
            "spent_usd": self.spent_usd,
            "rpm": self.rpm,
            "tpm": self.tpm,
            "revoked_at": self.revoked_at,
        }


def _check_new(
    tenant_id: str, budget_usd: float | None, period: str, rpm: int | None, tpm: int | None
) -> None:
    if not tenant_id or SEPARATOR in tenant_id or len(tenant_id) > 128:
        raise ConfigError(f"tenant must be 1-128 characters without {SEPARATOR!r}")
    if period not in PERIODS:
        raise ConfigError(f"budget period {period!r} is invalid (accepted: {', '.join(PERIODS)})")
    if budget_usd is not None and budget_usd < 0:
        raise ConfigError(f"budget must be >= 0 USD, not {budget_usd}")
    for name, value in (("rpm", rpm), ("tpm", tpm)):
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be >= 1, not {value}")


_COLUMNS = (
    "id, tenant_id, name, prefix, created_at, allowed_models, budget_usd, budget_period, "
    "rpm, tpm, revoked_at"
)


def _record(row: Any, spent: float = 0.0) -> ApiKey:
    models = json.loads(row[5]) if row[5] else None
    return ApiKey(
        id=row[0],
        tenant_id=row[1],
        name=row[2],
        prefix=row[3],
        created_at=str(row[4]),
        allowed_models=tuple(models) if models else None,
        budget_usd=row[6],
        budget_period=row[7],
        rpm=row[8],
        tpm=row[9],
        revoked_at=None if row[10] is None else str(row[10]),
        spent_usd=float(spent or 0.0),
    )


class KeyStore(ABC):
    """Where keys and their spend live."""

    async def create(
        self,
        tenant_id: str,
        *,
        name: str = "",
        allowed_models: list[str] | None = None,
        budget_usd: float | None = None,
        budget_period: str = "month",
        rpm: int | None = None,
        tpm: int | None = None,
    ) -> tuple[str, ApiKey]:
        """A new key: the key itself (shown once, never stored) and its record."""
        _check_new(tenant_id, budget_usd, budget_period, rpm, tpm)
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        record = ApiKey(
            id=secrets.token_hex(6),
            tenant_id=tenant_id,
            name=name,
            prefix=key[:10],
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            allowed_models=tuple(allowed_models) if allowed_models else None,
            budget_usd=budget_usd,
            budget_period=budget_period,  # type: ignore[arg-type]
            rpm=rpm,
            tpm=tpm,
        )
        await self._insert(record, hash_key(key))
        return key, record

    @abstractmethod
    async def _insert(self, record: ApiKey, key_hash: str) -> None: ...

    @abstractmethod
    async def verify(self, key: str) -> ApiKey | None:
        """The active key's record with its spend this period, or None."""

    @abstractmethod
    async def list(self, tenant_id: str | None = None) -> list[ApiKey]: ...

    @abstractmethod
    async def revoke(self, key_id: str) -> bool:
        """Revoke a key by id; False when no active key has that id."""

    @abstractmethod
    async def add_spend(self, key: ApiKey, usd: float) -> None: ...

    @abstractmethod
    async def count_active(self) -> int: ...

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        pass


_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
  id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, name TEXT NOT NULL, prefix TEXT NOT NULL,
  created_at TEXT NOT NULL, allowed_models TEXT, budget_usd REAL, budget_period TEXT NOT NULL,
  rpm INTEGER, tpm INTEGER, revoked_at TEXT, key_hash TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS api_key_spend (
  key_id TEXT NOT NULL, period TEXT NOT NULL, spent_usd REAL NOT NULL DEFAULT 0,
  PRIMARY KEY (key_id, period));
"""


class SQLiteKeyStore(KeyStore):
    """Keys in a SQLite file (the default: ``<data_dir>/keys.db``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    def _run(self, sql: str, args: tuple[Any, ...] = (), *, script: bool = False) -> list[Any]:
        with self._lock:
            if self._connection is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                connection = sqlite3.connect(self.path, check_same_thread=False, timeout=10)
                connection.execute("PRAGMA journal_mode=WAL")
                connection.executescript(_SQLITE_SCHEMA)
                self._connection = connection
            with self._connection:
                if script:
                    self._connection.executescript(sql)
                    return []
                return self._connection.execute(sql, args).fetchall()

    async def _q(self, sql: str, *args: Any) -> list[Any]:
        return await asyncio.to_thread(self._run, sql, args)

    async def _insert(self, record: ApiKey, key_hash: str) -> None:
        await self._q(
            f"INSERT INTO api_keys ({_COLUMNS}, key_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            *_values(record),
            key_hash,
        )

    async def verify(self, key: str) -> ApiKey | None:
        rows = await self._q(
            f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL",
            hash_key(key),
        )
        if not rows:
            return None
        record = _record(rows[0])
        spent = await self._q(
            "SELECT spent_usd FROM api_key_spend WHERE key_id = ? AND period = ?",
            record.id,
            period_label(record.budget_period),
        )
        return _record(rows[0], spent[0][0] if spent else 0.0)

    async def list(self, tenant_id: str | None = None) -> list[ApiKey]:
        where, args = ("WHERE tenant_id = ?", (tenant_id,)) if tenant_id else ("", ())
        rows = await self._q(f"SELECT {_COLUMNS} FROM api_keys {where} ORDER BY created_at", *args)
        return [_record(row) for row in rows]

    async def revoke(self, key_id: str) -> bool:
        rows = await self._q(
            "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING id",
            datetime.now(UTC).isoformat(timespec="seconds"),
            key_id,
        )
        return bool(rows)

    async def add_spend(self, key: ApiKey, usd: float) -> None:
        await self._q(
            "INSERT INTO api_key_spend (key_id, period, spent_usd) VALUES (?, ?, ?) "
            "ON CONFLICT (key_id, period) DO UPDATE SET spent_usd = spent_usd + excluded.spent_usd",
            key.id,
            period_label(key.budget_period),
            usd,
        )

    async def count_active(self) -> int:
        rows = await self._q("SELECT count(*) FROM api_keys WHERE revoked_at IS NULL")
        return int(rows[0][0])

    async def aclose(self) -> None:
        def close() -> None:
            with self._lock:
                if self._connection is not None:
                    self._connection.close()
                    self._connection = None

        await asyncio.to_thread(close)


def _values(record: ApiKey) -> tuple[Any, ...]:
    return (
        record.id,
        record.tenant_id,
        record.name,
        record.prefix,
        record.created_at,
        json.dumps(list(record.allowed_models)) if record.allowed_models else None,
        record.budget_usd,
        record.budget_period,
        record.rpm,
        record.tpm,
        record.revoked_at,
    )


_PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS victor_api_keys (
  id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, name TEXT NOT NULL, prefix TEXT NOT NULL,
  created_at TEXT NOT NULL, allowed_models TEXT, budget_usd DOUBLE PRECISION,
  budget_period TEXT NOT NULL, rpm INTEGER, tpm INTEGER, revoked_at TEXT,
  key_hash TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS victor_api_key_spend (
  key_id TEXT NOT NULL, period TEXT NOT NULL, spent_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
  PRIMARY KEY (key_id, period));
"""


class PostgresKeyStore(KeyStore):
    """Keys in PostgreSQL (``[postgres]``), shared by every server process."""

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self.dsn = dsn
        self.min_size = min_size
        self.max_size = max_size
        self._pool: Any = None
        self._opening = asyncio.Lock()

    async def _get_pool(self) -> Any:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    import asyncpg

                    pool = await asyncpg.create_pool(
                        self.dsn, min_size=self.min_size, max_size=self.max_size
                    )
                    # One creator at a time across processes.
                    async with pool.acquire() as connection, connection.transaction():
                        await connection.execute("SELECT pg_advisory_xact_lock(7411)")
                        await connection.execute(_PG_SCHEMA)
                    self._pool = pool
        return self._pool

    async def _insert(self, record: ApiKey, key_hash: str) -> None:
        pool = await self._get_pool()
        await pool.execute(
            f"INSERT INTO victor_api_keys ({_COLUMNS}, key_hash) "
            "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)",
            *_values(record),
            key_hash,
        )

    async def verify(self, key: str) -> ApiKey | None:
        pool = await self._get_pool()
        row = await pool.fetchrow(
            f"SELECT {_COLUMNS} FROM victor_api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
            hash_key(key),
        )
        if row is None:
            return None
        spent = await pool.fetchval(
            "SELECT spent_usd FROM victor_api_key_spend WHERE key_id = $1 AND period = $2",
            row[0],
            period_label(row[7]),
        )
        return _record(row, spent or 0.0)

    async def list(self, tenant_id: str | None = None) -> list[ApiKey]:
        pool = await self._get_pool()
        if tenant_id:
            rows = await pool.fetch(
                f"SELECT {_COLUMNS} FROM victor_api_keys WHERE tenant_id = $1 ORDER BY created_at",
                tenant_id,
            )
        else:
            rows = await pool.fetch(f"SELECT {_COLUMNS} FROM victor_api_keys ORDER BY created_at")
        return [_record(row) for row in rows]

    async def revoke(self, key_id: str) -> bool:
        pool = await self._get_pool()
        found = await pool.fetchval(
            "UPDATE victor_api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL "
            "RETURNING id",
            datetime.now(UTC).isoformat(timespec="seconds"),
            key_id,
        )
        return found is not None

    async def add_spend(self, key: ApiKey, usd: float) -> None:
        pool = await self._get_pool()
        await pool.execute(
            "INSERT INTO victor_api_key_spend (key_id, period, spent_usd) VALUES ($1, $2, $3) "
            "ON CONFLICT (key_id, period) DO UPDATE "
            "SET spent_usd = victor_api_key_spend.spent_usd + excluded.spent_usd",
            key.id,
            period_label(key.budget_period),
            usd,
        )

    async def count_active(self) -> int:
        pool = await self._get_pool()
        count = await pool.fetchval("SELECT count(*) FROM victor_api_keys WHERE revoked_at IS NULL")
        return int(count)

    async def aclose(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


def key_store_from_url(url: str) -> KeyStore:
    """``postgresql://...`` is PostgreSQL; anything else a SQLite file path."""
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresKeyStore(url)
    return SQLiteKeyStore(Path(url).expanduser())
