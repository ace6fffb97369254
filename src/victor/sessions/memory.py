"""Conversations kept in process memory: for tests and short-lived processes."""

from __future__ import annotations

from collections.abc import Sequence

from victor.protocols import ISessionStore, Message


class InMemorySessionStore(ISessionStore):
    """Keeps every session in a dict; nothing survives the process."""

    def __init__(self) -> None:
        self._sessions: dict[str, list[Message]] = {}

    async def load(self, session_id: str) -> list[Message] | None:
        history = self._sessions.get(session_id)
        return None if history is None else list(history)

    async def append(self, session_id: str, messages: Sequence[Message]) -> None:
        history = self._sessions.pop(session_id, None) or []
        history.extend(messages)
        self._sessions[session_id] = history  # re-inserted: most recent last

    async def replace(self, session_id: str, messages: Sequence[Message]) -> None:
        self._sessions.pop(session_id, None)
        self._sessions[session_id] = list(messages)

    async def delete(self, session_id: str) -> bool:
        return self._sessions.pop(session_id, None) is not None

    async def list_sessions(self, limit: int = 100) -> list[str]:
        return list(reversed(self._sessions))[:limit]
