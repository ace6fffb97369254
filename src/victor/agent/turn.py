"""What one chat turn resolves before the loop runs, and the events it emits."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from victor.analytics.events import Scope
from victor.config.schema import KNOWN_KEYS
from victor.protocols import Message, Tool, Usage, new_event_id


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
