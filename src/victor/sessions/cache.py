"""The histories a store read or wrote last, each at its version.

A store asks the database for a session's version (one primary-key lookup) and takes the
messages from here when they are at that version, so a continuing conversation is not
read and parsed again each turn, and a history another process changed is never served.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from victor.protocols import Message


class HistoryCache:
    """A bounded LRU of ``session id -> (version, messages)``. Not thread-safe: each store
    uses it from one thread (SQLite's writer, or the event loop)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[str, tuple[int, list[Message]]] = OrderedDict()

    def get(self, session_id: str, version: int) -> list[Message] | None:
        """A copy of the cached history if it is at ``version``."""
        entry = self._entries.get(session_id)
        if entry is None or entry[0] != version:
            return None
        self._entries.move_to_end(session_id)
        return list(entry[1])

    def version(self, session_id: str) -> int | None:
        """The version of the cached history, if any."""
        entry = self._entries.get(session_id)
        return None if entry is None else entry[0]

    def put(self, session_id: str, version: int, messages: list[Message]) -> None:
        if self.size <= 0:
            return
        self._entries[session_id] = (version, messages)
        self._entries.move_to_end(session_id)
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def written(
        self, session_id: str, version: int, messages: Sequence[Message], *, replace: bool
    ) -> None:
        """A write that took the session to ``version`` was committed."""
        entry = self._entries.get(session_id)
        if replace or version == 1:
            self.put(session_id, version, list(messages))
        elif entry is not None and entry[0] == version - 1:
            entry[1].extend(messages)
            self._entries[session_id] = (version, entry[1])
            self._entries.move_to_end(session_id)
        else:  # the write built on a version this cache never saw: read it back
            self._entries.pop(session_id, None)

    def forget(self, session_id: str) -> None:
        self._entries.pop(session_id, None)
