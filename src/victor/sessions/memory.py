"""Conversations kept in process memory: for tests and short-lived processes."""

from __future__ import annotations

from collections.abc import Sequence

from victor.errors import SessionConflictError
from victor.protocols import ISessionStore, Message, StoredSession
from victor.protocols.tenancy import tenant_of


class InMemorySessionStore(ISessionStore):
    """Keeps every session in a dict; nothing survives the process."""

    def __init__(self) -> None:
        self._sessions: dict[str, StoredSession] = {}

    async def read(self, session_id: str) -> StoredSession | None:
        stored = self._sessions.get(session_id)
        return None if stored is None else StoredSession(list(stored.messages), stored.version)

    async def write(
        self,
        session_id: str,
        messages: Sequence[Message],
        *,
        expected_version: int | None = None,
        replace: bool = False,
    ) -> int:
        stored = self._sessions.get(session_id)
        version = 0 if stored is None else stored.version
        if expected_version is not None and expected_version != version:
            raise SessionConflictError(session_id, expected_version, version)
        self._sessions.pop(session_id, None)
        kept = [] if stored is None or replace else stored.messages
        # Re-inserted: the most recently updated session last.
        self._sessions[session_id] = StoredSession([*kept, *messages], version + 1)
        return version + 1

    async def delete(self, session_id: str) -> bool:
        return self._sessions.pop(session_id, None) is not None

    async def list_sessions(self, limit: int = 100, *, tenant_id: str | None = None) -> list[str]:
        ids = reversed(self._sessions)
        if tenant_id is not None:
            ids = (s for s in ids if tenant_of(s) == tenant_id)
        return list(ids)[:limit]
