"""The units compaction keeps or drops whole, and the rules every strategy follows.

A conversation is split into groups: an assistant message that calls tools goes with the
tool results answering it; every other message is a group of its own. Every strategy keeps
the system messages and the latest user message (with its group), keeps or drops other
groups whole, and returns the kept messages in their original order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from victor.protocols import Context, Message
from victor.protocols.tokens import estimate_message_tokens

__all__ = [
    "QUERY_KEY",
    "Group",
    "assemble",
    "keywords",
    "message_groups",
    "query_of",
    "recent_start",
    "required",
    "split_groups",
]

# ``Context.metadata`` key holding the current turn's query (the new user message).
QUERY_KEY = "query"


@dataclass(slots=True)
class Group:
    """Messages kept or dropped together; ``position`` is the index of the first one."""

    position: int
    messages: list[Message]
    tokens: int

    @property
    def is_system(self) -> bool:
        return self.messages[0].role == "system"

    @property
    def is_user(self) -> bool:
        return self.messages[0].role == "user"

    def text(self, limit: int = 4000) -> str:
        """The group's text (tool calls by name), clipped to ``limit`` characters."""
        parts = []
        for m in self.messages:
            if m.content:
                parts.append(m.content)
            parts.extend(call.name for call in m.tool_calls)
        return "\n".join(parts)[:limit]


def message_groups(messages: Sequence[Message]) -> list[list[Message]]:
    """The conversation split into groups (see the module docstring)."""
    groups: list[list[Message]] = []
    for message in messages:
        if (
            message.role == "tool"
            and groups
            and groups[-1][0].role == "assistant"
            and groups[-1][0].tool_calls
        ):
            groups[-1].append(message)
        else:
            groups.append([message])
    return groups


def split_groups(messages: Sequence[Message]) -> list[Group]:
    groups = []
    position = 0
    for members in message_groups(messages):
        groups.append(Group(position, members, estimate_message_tokens(members)))
        position += len(members)
    return groups


def required(groups: Sequence[Group]) -> set[int]:
    """Indices of the groups every strategy keeps: the system messages and the latest
    user message."""
    keep = {i for i, g in enumerate(groups) if g.is_system}
    for i in range(len(groups) - 1, -1, -1):
        if groups[i].is_user:
            keep.add(i)
            break
    return keep


def recent_start(groups: Sequence[Group], turns: int) -> int:
    """Index of the first group of the last ``turns`` turns (a turn opens with a user
    message); 0 when the conversation has no more turns than that."""
    if turns <= 0:
        return len(groups)
    starts = [i for i, g in enumerate(groups) if g.is_user]
    return starts[-turns] if len(starts) > turns else 0


def assemble(groups: Sequence[Group], keep: Iterable[int]) -> list[Message]:
    """The messages of the kept groups, in their original order."""
    return [m for i in sorted(keep) for m in groups[i].messages]


def query_of(context: Context) -> str:
    """The query compaction serves: the turn's new message, else the latest user message."""
    query = context.metadata.get(QUERY_KEY)
    if isinstance(query, str) and query:
        return query
    for m in reversed(context.messages):
        if m.role == "user":
            return m.content
    return ""


_WORD = re.compile(r"[^\W_]{3,}|\w*_\w*", re.UNICODE)


def keywords(text: str) -> set[str]:
    """The words of ``text`` worth matching: lower-cased, three letters or more (or
    identifiers with an underscore), function words left out."""
    from victor.selection.text import STOPWORDS  # the same function words as tool search

    return {w for w in (m.lower() for m in _WORD.findall(text)) if w not in STOPWORDS}
