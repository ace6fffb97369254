"""What one tool selection reports: to the agent loop (the tools) and to analytics.

Kept apart from the coordinator so the event's fields have one definition. The field
names are stable: A/B analyses group ``tool_selection`` events by them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from victor.protocols import Tool

__all__ = ["USED_VALUES", "ToolSelection"]

# What ``ToolSelection.used`` can be: a built-in ranking, every tool unranked ("all":
# also when no more tools than max_tools needed ranking), a custom strategy's own
# answer, or nothing at all ("none": a hard filter allowed no tool).
USED_VALUES = ("keyword", "semantic", "hybrid", "all", "custom", "none")


@dataclass(slots=True)
class ToolSelection:
    """The outcome of one selection, for the agent loop and the ``tool_selection`` event.

    - ``strategy``: what the session asked for (a built-in or registered name, the
      default strategy's class name, or ``"all"`` when nothing was configured and every
      tool fit);
    - ``used``: what actually produced the tools, one of :data:`USED_VALUES`; differs
      from ``strategy`` when a ranking degraded (hybrid -> keyword when embeddings
      fail) or a custom strategy fell back;
    - ``max_tools`` and ``hybrid_alpha``: the limit and blend weight in effect this
      turn (session config, else the coordinator's defaults);
    - ``fallback`` and ``error``: whether the choice fell back or degraded, and why.

    ``details`` repeats ``used``, ``max_tools`` and ``hybrid_alpha`` under those keys and
    may add ``context_turns``, ``pinned`` and ``notes``.
    """

    tools: list[Tool]
    strategy: str
    candidates: int
    latency_ms: float = 0.0
    fallback: bool = False
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    used: str = "all"
    max_tools: int = 0
    hybrid_alpha: float | None = None

    def event_data(self) -> dict[str, Any]:
        """The ``tool_selection`` analytics event's data, with stable keys."""
        return {
            "strategy": self.strategy,
            "used": self.used,
            "candidates": self.candidates,
            "chosen": [t.name for t in self.tools],
            "latency_ms": self.latency_ms,
            "fallback": self.fallback,
            "error": self.error,
            "max_tools": self.max_tools,
            "hybrid_alpha": self.hybrid_alpha,
        }
