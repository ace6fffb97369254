"""Where conversations are kept."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from victor.sessions.memory import InMemorySessionStore
from victor.sessions.sqlite import SQLiteSessionStore

if TYPE_CHECKING:
    from victor.config.settings import Settings
    from victor.protocols import ISessionStore
    from victor.sessions.postgres import PostgresSessionStore

__all__ = [
    "InMemorySessionStore",
    "PostgresSessionStore",
    "SQLiteSessionStore",
    "session_store_from_settings",
]


def session_store_from_settings(settings: Settings) -> ISessionStore:
    """The store ``VICTOR_SESSION_STORE`` names: sqlite (default), memory or a DSN."""
    if settings.session_store == "memory":
        return InMemorySessionStore()
    if settings.session_store == "sqlite":
        return SQLiteSessionStore.shared(
            settings.sessions_path, durability=settings.session_durability
        )
    from victor.sessions.postgres import PostgresSessionStore

    return PostgresSessionStore(settings.session_store)


def __getattr__(name: str) -> Any:
    if name == "PostgresSessionStore":  # asyncpg is an extra: imported on first use
        from victor.sessions.postgres import PostgresSessionStore

        return PostgresSessionStore
    raise AttributeError(f"module 'victor.sessions' has no attribute {name!r}")
