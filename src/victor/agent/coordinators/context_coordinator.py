"""Keeps the conversation within the model's context window."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from victor.protocols import Context, ICompactionStrategy, Message
from victor.providers._responses import estimate_message_tokens

logger = logging.getLogger(__name__)

__all__ = [
    "BaseCompactionStrategy",
    "ContextCoordinator",
    "TruncationCompactionStrategy",
    "message_groups",
]


def message_groups(messages: Sequence[Message]) -> list[list[Message]]:
    """Split a conversation into units that must be kept or dropped whole: an assistant
    message that calls tools goes with the tool results answering it."""
    groups: list[list[Message]] = []
    for message in messages:
        if (
            message.role == "tool"
            and groups
            and (groups[-1][0].tool_calls and groups[-1][0].role == "assistant")
        ):
            groups[-1].append(message)
        else:
            groups.append([message])
    return groups


class BaseCompactionStrategy(ICompactionStrategy):
    """Base class of compaction strategies: ``async compact(context) -> Context``."""

    def estimate_tokens(self, messages: Sequence[Message]) -> int:
        return estimate_message_tokens(messages)


class TruncationCompactionStrategy(BaseCompactionStrategy):
    """Keeps the system messages and the most recent turns that fit the budget
    (``context.max_tokens``), never splitting a tool call from its results."""

    async def compact(self, context: Context) -> Context:
        budget = context.max_tokens or 0
        system = [m for m in context.messages if m.role == "system"]
        rest = [m for m in context.messages if m.role != "system"]
        groups = message_groups(rest)
        used = self.estimate_tokens(system)
        kept: list[list[Message]] = []
        for group in reversed(groups):
            cost = self.estimate_tokens(group)
            if kept and used + cost > budget:
                break
            kept.append(group)  # the newest group is kept even if it alone is too big
            used += cost
        messages = system + [m for g in reversed(kept) for m in g]
        return context.model_copy(update={"messages": messages})


class ContextCoordinator:
    """Compacts the conversation once it passes ``threshold`` x the context window.

    The compacted history replaces the stored one, so the work is not redone each turn.
    """

    def __init__(self, compaction_strategy: ICompactionStrategy | None = None) -> None:
        self.compaction_strategy = compaction_strategy or TruncationCompactionStrategy()

    async def maybe_compact(
        self,
        messages: list[Message],
        *,
        context_window: int,
        threshold: float,
        session_id: str | None = None,
        model: str | None = None,
    ) -> list[Message] | None:
        """The compacted messages, or None when they fit as they are."""
        limit = int(context_window * threshold)
        if estimate_message_tokens(messages) <= limit:
            return None
        target = int(limit * 0.6)  # leave room to grow before compacting again
        context = Context(
            messages=list(messages), session_id=session_id, model=model, max_tokens=target
        )
        compacted = await self.compaction_strategy.compact(context)
        logger.info(
            "compacted session %s from %d to %d messages",
            session_id,
            len(messages),
            len(compacted.messages),
        )
        return list(compacted.messages)
