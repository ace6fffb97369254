"""Keeps the conversation within the model's context window."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence

from victor.errors import ConfigError
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
    """Compacts a session's history once the conversation passes ``threshold`` x the
    model's context window.

    ``compaction_strategy`` is the default; ``strategies`` names others that a session
    picks with the ``context_compaction_strategy`` config key. A strategy that fails, or
    returns something other than a :class:`Context`, is logged and replaced by truncation
    for that turn. The compacted history replaces the stored one, so the work is not redone
    every turn. Token counts are kept per session and grow with each turn, so a long
    conversation does not cost a full recount per turn.
    """

    def __init__(
        self,
        compaction_strategy: ICompactionStrategy | None = None,
        *,
        strategies: Mapping[str, ICompactionStrategy] | None = None,
        max_tracked_sessions: int = 10_000,
    ) -> None:
        self.compaction_strategy = compaction_strategy or TruncationCompactionStrategy()
        self.strategies: dict[str, ICompactionStrategy] = {
            "truncation": TruncationCompactionStrategy(),
            **(strategies or {}),
        }
        self._fallback = TruncationCompactionStrategy()
        self._estimates: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._max_tracked = max_tracked_sessions

    def _strategy(self, name: str | None) -> ICompactionStrategy:
        if name is None:
            return self.compaction_strategy
        try:
            return self.strategies[name]
        except KeyError:
            known = ", ".join(sorted(self.strategies))
            raise ConfigError(
                f"unknown context_compaction_strategy {name!r}; known: {known}"
            ) from None

    def history_tokens(self, session_id: str | None, history: Sequence[Message]) -> int:
        """Estimated tokens of ``history``, counting only what was added since last time."""
        if session_id is None:
            return estimate_message_tokens(history)
        counted, tokens = self._estimates.get(session_id, (0, 0))
        if counted > len(history):  # replaced behind our back: count again
            counted, tokens = 0, 0
        tokens += estimate_message_tokens(history[counted:])
        self._remember(session_id, len(history), tokens)
        return tokens

    def _remember(self, session_id: str, count: int, tokens: int) -> None:
        self._estimates[session_id] = (count, tokens)
        self._estimates.move_to_end(session_id)
        if len(self._estimates) > self._max_tracked:
            self._estimates.popitem(last=False)

    async def maybe_compact(
        self,
        history: list[Message],
        pending: Sequence[Message] = (),
        *,
        context_window: int,
        threshold: float,
        session_id: str | None = None,
        model: str | None = None,
        strategy: str | None = None,
    ) -> list[Message] | None:
        """The compacted ``history``, or None when it fits as it is with the ``pending``
        messages of this turn (which are never compacted away)."""
        limit = int(context_window * threshold)
        pending_tokens = estimate_message_tokens(pending)
        if self.history_tokens(session_id, history) + pending_tokens <= limit:
            return None
        chosen = self._strategy(strategy)
        # Leave room to grow before compacting again.
        target = max(0, int(limit * 0.6) - pending_tokens)
        context = Context(
            messages=list(history), session_id=session_id, model=model, max_tokens=target
        )
        try:
            result = await chosen.compact(context)
            if not isinstance(result, Context):
                raise TypeError(f"compact() returned {type(result).__name__}, not a Context")
        except Exception:
            logger.exception("compaction strategy %r failed; truncating instead", chosen)
            result = await self._fallback.compact(context)
        compacted = list(result.messages)
        logger.info(
            "compacted session %s from %d to %d messages", session_id, len(history), len(compacted)
        )
        if session_id is not None:
            self._remember(session_id, len(compacted), estimate_message_tokens(compacted))
        return compacted
