"""Keeps the conversation within the model's context window."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from victor.context import (
    COMPACTION_STRATEGIES,
    PROVIDER_KEY,
    QUERY_KEY,
    BaseCompactionStrategy,
    KeepRecentCompactionStrategy,
    SemanticCompactionStrategy,
    SummarizationCompactionStrategy,
    TruncationCompactionStrategy,
    message_groups,
)
from victor.errors import ConfigError
from victor.protocols import Context, ICompactionStrategy, IProvider, Message, Usage
from victor.protocols.tokens import estimate_message_tokens

logger = logging.getLogger(__name__)

__all__ = [
    "BaseCompactionStrategy",
    "Compaction",
    "ContextCoordinator",
    "KeepRecentCompactionStrategy",
    "SemanticCompactionStrategy",
    "SummarizationCompactionStrategy",
    "TruncationCompactionStrategy",
    "message_groups",
]


@dataclass(slots=True)
class Compaction:
    """A compacted history, and what a strategy's model call cost (if it made one)."""

    messages: list[Message]
    strategy: str
    usage: Usage | None = None
    usage_model: str | None = None


class ContextCoordinator:
    """Compacts a session's history once the conversation passes ``threshold`` x the
    model's context window.

    ``compaction_strategy`` is the default (truncation when not given); a session picks
    another with the ``context_compaction_strategy`` config key: a built-in name
    (``truncation``, ``keep_recent``, ``summarization``, ``semantic``) or one of
    ``strategies``. A strategy that fails, or returns something other than a
    :class:`Context`, is logged and replaced by truncation for that turn. The compacted
    history replaces the stored one, so the work is not redone every turn.

    Token counts: the provider's ``usage.input_tokens`` for a session's last model call
    is the truth (it covers the system prompt and tool schemas too); messages added since
    are estimated (:mod:`victor.protocols.tokens`), as is a session no call was reported
    for yet. Counts are kept per session, so a long conversation is not recounted each turn.
    """

    def __init__(
        self,
        compaction_strategy: ICompactionStrategy | None = None,
        *,
        strategies: Mapping[str, ICompactionStrategy] | None = None,
        target_ratio: float = 0.6,
        max_tracked_sessions: int = 10_000,
    ) -> None:
        if not 0.0 < target_ratio <= 1.0:
            raise ValueError(f"target_ratio must be in (0, 1], not {target_ratio}")
        self.compaction_strategy = compaction_strategy or TruncationCompactionStrategy()
        self.strategies: dict[str, ICompactionStrategy] = {
            **{name: cls() for name, cls in COMPACTION_STRATEGIES.items()},
            **(strategies or {}),
        }
        self.target_ratio = target_ratio
        self._fallback = TruncationCompactionStrategy()
        self._counts: OrderedDict[str, tuple[int, int]] = OrderedDict()
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

    # -- token counts -----------------------------------------------------------------

    def observe_usage(self, session_id: str | None, message_count: int, usage: Usage) -> None:
        """Record the provider's count for a call that was sent the first
        ``message_count`` messages of the session's history (plus system prompt and tools).
        A provider that reports no input tokens leaves the estimate in place."""
        if session_id is not None and usage.input_tokens > 0:
            self._remember(session_id, message_count, usage.input_tokens)

    def history_tokens(self, session_id: str | None, history: Sequence[Message]) -> int:
        """Tokens of ``history``: the last known count plus an estimate of what was added
        since."""
        if session_id is None:
            return estimate_message_tokens(history)
        counted, tokens = self._counts.get(session_id, (0, 0))
        if counted > len(history):  # replaced behind our back: count again
            counted, tokens = 0, 0
        tokens += estimate_message_tokens(history[counted:])
        self._remember(session_id, len(history), tokens)
        return tokens

    def _remember(self, session_id: str, count: int, tokens: int) -> None:
        self._counts[session_id] = (count, tokens)
        self._counts.move_to_end(session_id)
        if len(self._counts) > self._max_tracked:
            self._counts.popitem(last=False)

    # -- compaction -------------------------------------------------------------------

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
        query: str | None = None,
        provider: IProvider | None = None,
    ) -> Compaction | None:
        """The compacted ``history``, or None when it fits as it is with the ``pending``
        messages of this turn (which are never compacted away). It is compacted to
        ``target_ratio`` of the limit, leaving room to grow before the next compaction.
        ``provider`` is the default summariser (the orchestrator's own)."""
        chosen = self._strategy(strategy)  # a wrong name fails on the first turn
        limit = int(context_window * threshold)
        pending_tokens = estimate_message_tokens(pending)
        known = self.history_tokens(session_id, history)
        if known + pending_tokens <= limit:
            return None
        # What a provider counted beyond the messages (system prompt, tool schemas) stays.
        overhead = max(0, known - estimate_message_tokens(history))
        target = max(0, int(limit * self.target_ratio) - pending_tokens - overhead)
        metadata: dict[str, object] = {}
        if query is not None:
            metadata[QUERY_KEY] = query
        if provider is not None:
            metadata[PROVIDER_KEY] = provider
        context = Context(
            messages=list(history),
            session_id=session_id,
            model=model,
            max_tokens=target,
            metadata=metadata,
        )
        name = strategy or type(chosen).__name__
        try:
            result = await chosen.compact(context)
            if not isinstance(result, Context):
                raise TypeError(f"compact() returned {type(result).__name__}, not a Context")
        except Exception:
            logger.exception("compaction strategy %s failed; truncating instead", name)
            result = await self._fallback.compact(context)
            name = "truncation"
        compacted = list(result.messages)
        usage = result.metadata.get("usage")
        logger.info(
            "compacted session %s with %s from %d to %d messages",
            session_id,
            name,
            len(history),
            len(compacted),
        )
        if session_id is not None:
            self._remember(session_id, len(compacted), estimate_message_tokens(compacted))
        return Compaction(
            messages=compacted,
            strategy=name,
            usage=usage if isinstance(usage, Usage) else None,
            usage_model=str(result.metadata.get("usage_model") or model or "") or None,
        )
