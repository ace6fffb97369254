"""Where conversations are kept."""

from __future__ import annotations

from typing import TYPE_CHECKING

from victor.sessions.memory import InMemorySessionStore
from victor.sessions.sqlite import SQLiteSessionStore

if TYPE_CHECKING:
    from victor.config.settings import Settings
    from victor.protocols import ISessionStore

__all__ = ["InMemorySessionStore", "SQLiteSessionStore", "session_store_from_settings"]


def session_store_from_settings(settings: Settings) -> ISessionStore:
    if settings.session_store == "memory":
        return InMemorySessionStore()
    return SQLiteSessionStore.shared(settings.sessions_path)
