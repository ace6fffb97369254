"""What one chat turn resolves before the loop runs, and the events it emits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from victor.protocols import AnalyticsEvent, Message, Tool, Usage

# Config keys the orchestrator applies itself; the rest stay visible to coordinators.
KNOWN_KEYS = frozenset(
    {
        "model",
        "temperature",
        "max_tokens",
        "system_prompt",
        "tool_selection",
        "context_compaction_strategy",
        "context_compaction_threshold",
        "enable_analytics",
        "max_tool_iterations",
        "variant",
        "experiment",
        "tenant_id",
    }
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
    compacted: bool = False
    tools: list[Tool] = field(default_factory=list)
    new_messages: list[Message] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    iterations: int = 0

    def event(self, type_: str, data: dict[str, Any]) -> AnalyticsEvent:
        return AnalyticsEvent.trusted(
            type_, self.session_id, data, self.tenant_id, self.experiment, self.variant
        )


def check_config(config: dict[str, Any]) -> None:
    """Reject values of known keys that cannot work, naming the key."""
    from victor.errors import ConfigError

    temperature = config.get("temperature")
    if temperature is not None and (
        not isinstance(temperature, int | float) or not 0 <= temperature <= 2
    ):
        raise ConfigError(f"config 'temperature' must be a number from 0 to 2, not {temperature!r}")
    for key in ("max_tokens", "max_tool_iterations"):
        value = config.get(key)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 1
        ):
            raise ConfigError(f"config {key!r} must be a positive integer, not {value!r}")
    model = config.get("model")
    if model is not None and (not isinstance(model, str) or not model):
        raise ConfigError(f"config 'model' must be a model name, not {model!r}")
    for key in ("system_prompt", "variant", "experiment"):
        value = config.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"config {key!r} must be a string, not {value!r}")
    selection = config.get("tool_selection")
    if selection is not None and not isinstance(selection, dict):
        raise ConfigError(f"config 'tool_selection' must be a mapping, not {selection!r}")
