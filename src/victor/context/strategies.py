"""The base of compaction strategies, and the two that need no model: truncation and
keep-recent-plus-keywords."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from victor.context.groups import (
    Group,
    assemble,
    keywords,
    query_of,
    recent_start,
    required,
    split_groups,
)
from victor.protocols import Context, ICompactionStrategy, Message
from victor.protocols.tokens import estimate_message_tokens

__all__ = [
    "BaseCompactionStrategy",
    "KeepRecentCompactionStrategy",
    "TruncationCompactionStrategy",
]


class BaseCompactionStrategy(ICompactionStrategy):
    """Base class of compaction strategies: ``async compact(context) -> Context``.

    ``context.max_tokens`` is the budget the result should fit in. The built-in strategies
    keep every system message and the latest user message even when those alone exceed
    it, never separate a tool call from its results, and keep the original order. A
    strategy that calls a model reports what it spent in the result's
    ``metadata["usage"]`` (a :class:`~victor.protocols.Usage`) and
    ``metadata["usage_model"]``: the orchestrator adds it to the turn's usage and cost.
    """

    def estimate_tokens(self, messages: Sequence[Message]) -> int:
        return estimate_message_tokens(messages)

    @staticmethod
    def _add_while_fits(
        groups: Sequence[Group],
        order: Iterable[int],
        keep: set[int],
        used: int,
        budget: int,
        *,
        stop_at_first_misfit: bool,
    ) -> int:
        """Add groups of ``order`` to ``keep`` while the budget allows; the new total."""
        for i in order:
            if i in keep:
                continue
            if used + groups[i].tokens > budget:
                if stop_at_first_misfit:
                    break
                continue
            keep.add(i)
            used += groups[i].tokens
        return used

    def _keep_recent(
        self, groups: Sequence[Group], recent_turns: int, budget: int
    ) -> tuple[set[int], int, int]:
        """The groups always kept, then the last ``recent_turns`` turns, newest first, as
        far as they fit ``budget``: (kept indexes, tokens used, where the turns start)."""
        keep = required(groups)
        used = sum(groups[i].tokens for i in keep)
        first_recent = recent_start(groups, recent_turns)
        used = self._add_while_fits(
            groups,
            range(len(groups) - 1, first_recent - 1, -1),
            keep,
            used,
            budget,
            stop_at_first_misfit=True,
        )
        return keep, used, first_recent


class TruncationCompactionStrategy(BaseCompactionStrategy):
    """Keeps the system messages, the latest user message and the most recent groups that
    fit the budget: the newest part of the conversation, without gaps."""

    async def compact(self, context: Context) -> Context:
        budget = context.max_tokens
        if budget is None:
            return context
        groups = split_groups(context.messages)
        keep = required(groups)
        used = sum(groups[i].tokens for i in keep)
        self._add_while_fits(
            groups,
            range(len(groups) - 1, -1, -1),
            keep,
            used,
            budget,
            stop_at_first_misfit=True,
        )
        return context.model_copy(update={"messages": assemble(groups, keep)})


class KeepRecentCompactionStrategy(BaseCompactionStrategy):
    """Keeps the last ``recent_turns`` turns, then the older messages that share the most
    keywords with the query (the turn's new message), as many as fit the budget.

    A turn starts at a user message. Keywords are words of three letters or more, common
    English words left out, matched whole and case-insensitively; a message needs
    ``min_matches`` distinct query keywords to be kept. Among equal matches the newer wins.
    """

    def __init__(self, recent_turns: int = 3, *, min_matches: int = 1) -> None:
        if recent_turns < 0:
            raise ValueError(f"recent_turns must be >= 0, not {recent_turns}")
        if min_matches < 1:
            raise ValueError(f"min_matches must be >= 1, not {min_matches}")
        self.recent_turns = recent_turns
        self.min_matches = min_matches

    async def compact(self, context: Context) -> Context:
        budget = context.max_tokens
        if budget is None:
            return context
        groups = split_groups(context.messages)
        keep, used, first_recent = self._keep_recent(groups, self.recent_turns, budget)
        ranked = self._ranked(groups[:first_recent], query_of(context))
        self._add_while_fits(groups, ranked, keep, used, budget, stop_at_first_misfit=False)
        return context.model_copy(update={"messages": assemble(groups, keep)})

    def _ranked(self, older: Sequence[Group], query: str) -> list[int]:
        """Indices of the older groups matching the query, best first."""
        words = keywords(query)
        if not words:
            return []
        scored = []
        for i, group in enumerate(older):
            if group.is_system:
                continue
            text = group.text().lower()
            found = sum(1 for w in words if _has_word(text, w))
            if found >= self.min_matches:
                scored.append((found, i))
        scored.sort(reverse=True)
        return [i for _, i in scored]


def _has_word(text: str, word: str) -> bool:
    """Whether ``word`` occurs in ``text`` as a whole word. ``str.find`` rather than a
    regular expression: it runs every compaction over the whole conversation."""
    start = text.find(word)
    while start != -1:
        end = start + len(word)
        if (start == 0 or not text[start - 1].isalnum()) and (
            end == len(text) or not text[end].isalnum()
        ):
            return True
        start = text.find(word, end)
    return False
