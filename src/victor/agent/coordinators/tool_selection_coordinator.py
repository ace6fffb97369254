"""Chooses which tools the model is offered each turn."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from victor.protocols import IToolSelectionCoordinator, IToolSelectionStrategy, Message, Tool

logger = logging.getLogger(__name__)

__all__ = ["IToolSelectionCoordinator", "ToolSelection", "ToolSelectionCoordinator"]


@dataclass(slots=True)
class ToolSelection:
    """The outcome of one selection, for the agent loop and the ``tool_selection`` event."""

    tools: list[Tool]
    strategy: str
    candidates: int
    latency_ms: float = 0.0
    fallback: bool = False
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class ToolSelectionCoordinator(IToolSelectionCoordinator):
    """Runs the session's selection strategy over the registered tools.

    With no more tools than ``max_tools`` every tool is offered; past that the strategy
    ranks them. ``default_strategy`` is a custom :class:`IToolSelectionStrategy`; when it
    raises or returns nothing the built-in ranking is used instead (and logged).
    """

    def __init__(
        self,
        default_strategy: IToolSelectionStrategy | None = None,
        *,
        max_tools: int = 20,
    ) -> None:
        self.default_strategy = default_strategy
        self.max_tools = max_tools

    async def _keyword_selection(
        self, query: str, tools: Sequence[Tool], k: int | None = None
    ) -> list[Tool]:
        return list(tools)[: k or self.max_tools]

    async def _semantic_selection(
        self, query: str, tools: Sequence[Tool], k: int | None = None
    ) -> list[Tool]:
        return await self._keyword_selection(query, tools, k)

    async def _hybrid_selection(
        self, query: str, tools: Sequence[Tool], k: int | None = None
    ) -> list[Tool]:
        return await self._keyword_selection(query, tools, k)

    async def select_tools(
        self,
        query: str,
        tools: Sequence[Tool],
        k: int | None = None,
        strategy: str | None = None,
    ) -> list[Tool]:
        return await self._keyword_selection(query, tools, k)

    async def select_for_turn(
        self,
        query: str,
        tools: Sequence[Tool],
        *,
        config: dict[str, Any] | None = None,
        history: Sequence[Message] = (),
    ) -> ToolSelection:
        """Select the tools for one turn of the agent loop."""
        start = time.perf_counter()
        strategy = self.default_strategy
        if strategy is not None:
            try:
                chosen = await strategy.select_tools(query, list(tools), self)
            except Exception as exc:
                logger.warning("tool selection strategy %r failed: %s", strategy, exc)
                chosen = []
            if chosen:
                return ToolSelection(
                    list(chosen), type(strategy).__name__, len(tools),
                    (time.perf_counter() - start) * 1000,
                )
        if len(tools) <= self.max_tools:
            return ToolSelection(list(tools), "all", len(tools), 0.0)
        chosen = await self.select_tools(query, tools)
        return ToolSelection(chosen, "keyword", len(tools), (time.perf_counter() - start) * 1000)
