"""What one chat turn resolves before the loop runs, and the events it emits."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from victor.analytics.events import Scope
from victor.errors import ConfigError
from victor.protocols import Message, Tool, Usage, new_event_id


class TurnConfig(BaseModel):
    """The config keys the orchestrator applies itself, checked strictly so that a typo
    in a file (``temperature: hot``, ``enable_analytics: "false"``) is an error naming the
    key rather than a surprise. Other keys are kept for coordinators and contributors."""

    model_config = ConfigDict(extra="allow", strict=True)

    model: str | None = Field(default=None, min_length=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, gt=0)
    system_prompt: str | None = None
    max_tool_iterations: int | None = Field(default=None, ge=1)
    tool_selection: dict[str, Any] | None = None
    context_compaction_strategy: str | None = None
    context_compaction_threshold: float | None = Field(default=None, gt=0.0, le=1.0)
    enable_analytics: bool | None = None
    tenant_id: str | None = None
    variant: str | None = None
    experiment: str | None = None


KNOWN_KEYS = frozenset(TurnConfig.model_fields)


def check_config(config: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` naming every known key whose value cannot work."""
    try:
        TurnConfig.model_validate(config)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            key = ".".join(str(p) for p in err["loc"])
            problems.append(f"{key!r}: {err['msg']} (got {err['input']!r:.80})")
        raise ConfigError("invalid session config: " + "; ".join(problems)) from None


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
    iterations: int = 0
    # Ties a turn's events together (a trace of one turn, for exporters and reports).
    turn_id: str = field(default_factory=new_event_id)
    scope: Scope = field(init=False)  # what the turn's analytics events share

    def __post_init__(self) -> None:
        self.scope = Scope(
            self.session_id, self.tenant_id, self.experiment, self.variant, self.turn_id
        )
