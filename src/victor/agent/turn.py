"""What one chat turn resolves before the loop runs, and the events it emits."""

from __future__ import annotations

import asyncio
import contextlib
import difflib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from victor.analytics.events import Scope
from victor.config.schema import KNOWN_KEYS
from victor.errors import TenantMismatchError
from victor.protocols import Message, Tool, Usage, new_event_id
from victor.protocols.tenancy import tenant_of

if TYPE_CHECKING:
    from victor.config.settings import Settings


def check_overrides(overrides: Mapping[str, Any]) -> None:
    """``chat(..., temprature=0.2)`` must not pass silently: overrides are the known keys
    only (other keys go through ``config={...}``)."""
    for name in overrides:
        if name not in KNOWN_KEYS:
            close = difflib.get_close_matches(name, [*KNOWN_KEYS, "session_id", "config"], 1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise TypeError(
                f"chat() got an unexpected keyword argument {name!r}{hint} "
                "(pass other config keys as config={...})"
            )


@dataclass(slots=True)
class Turn:
    """The state of one chat turn."""

    session_id: str
    query: str
    config: dict[str, Any]
    model: str
    temperature: float | None
    max_tokens: int | None
    max_iterations: int
    tenant_id: str | None
    variant: str | None
    experiment: str | None
    analytics: bool
    started: float
    history: list[Message] = field(default_factory=list)
    is_new: bool = False
    version: int = 0  # of the stored session when the turn read it
    compacted: bool = False
    tools: list[Tool] = field(default_factory=list)
    new_messages: list[Message] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    # A compaction strategy's model call (a summary), part of ``usage``, and its model.
    compaction_usage: Usage | None = None
    compaction_model: str | None = None
    iterations: int = 0
    # Ties a turn's events together (a trace of one turn, for exporters and reports).
    turn_id: str = field(default_factory=new_event_id)
    scope: Scope = field(init=False)  # what the turn's analytics events share

    def __post_init__(self) -> None:
        self.scope = Scope(
            self.session_id, self.tenant_id, self.experiment, self.variant, self.turn_id
        )

    @classmethod
    def start(
        cls,
        session_id: str,
        query: str,
        config: dict[str, Any],
        *,
        default_model: str,
        settings: Settings,
        analytics: bool,
        started: float,
    ) -> Turn:
        """A turn of ``session_id`` with the session's ``config`` applied over
        ``settings``. The tenant is the session id's; a config naming another is refused."""
        tenant_id = tenant_of(session_id)
        if config.get("tenant_id", tenant_id) != tenant_id:
            raise TenantMismatchError(
                f"the config of session {session_id!r} names tenant "
                f"{config['tenant_id']!r}; the session belongs to {tenant_id!r}"
            )
        return cls(
            session_id=session_id,
            query=query,
            config=config,
            model=config.get("model") or default_model,
            temperature=config.get("temperature", settings.temperature),
            max_tokens=config.get("max_tokens", settings.max_tokens),
            max_iterations=config.get("max_tool_iterations") or settings.max_tool_iterations,
            tenant_id=tenant_id,
            variant=config.get("variant"),
            experiment=config.get("experiment"),
            analytics=analytics and config.get("enable_analytics", True) is not False,
            started=started,
        )


class SessionLocks:
    """One lock per session id in use, so the turns of a session run one at a time;
    a lock is forgotten when its last user leaves."""

    def __init__(self) -> None:
        self._locks: dict[str, list[Any]] = {}  # session id -> [lock, users]

    @contextlib.asynccontextmanager
    async def hold(self, session_id: str) -> AsyncIterator[None]:
        entry = self._locks.get(session_id)
        if entry is None:
            entry = self._locks[session_id] = [asyncio.Lock(), 0]
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._locks[session_id]
