"""Per-turn inputs of tool selection: the session's config and recent history.

Kept apart from the coordinator so each rule is small and testable on its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from victor.protocols import Tool

__all__ = ["config_value", "previous_user_turns", "with_pinned"]


def config_value(cfg: Any, key: str, default: Any, kind: type) -> tuple[Any, str | None]:
    """``cfg[key]`` as ``kind`` (int: at least 1; float: clamped to [0, 1]), or
    ``default`` and a complaint when it is missing or malformed."""
    value = cfg.get(key) if isinstance(cfg, Mapping) else None
    if value is None:
        return default, None
    try:
        if isinstance(value, bool):
            raise TypeError
        number = kind(value)
    except (TypeError, ValueError):
        wanted = "an integer" if kind is int else "a number"
        return default, f"tool_selection.{key}={value!r} is not {wanted}; using {default}"
    if kind is int:
        return max(1, number), None
    return min(1.0, max(0.0, number)), None


def previous_user_turns(
    query: str, history: Sequence[Any], *, turns: int, short_query_words: int
) -> list[str]:
    """Earlier user messages to rank a short follow-up ("and in Berlin?") with, oldest
    first. Long queries stand alone; the current message, when the history already
    holds it, is skipped. Messages may be ``Message`` objects or dicts."""
    if turns <= 0 or not history or len(query.split()) >= short_query_words:
        return []
    found: list[str] = []
    skipped_current = False
    for message in reversed(history):
        if isinstance(message, Mapping):
            role, content = message.get("role"), message.get("content")
        else:
            role, content = getattr(message, "role", None), getattr(message, "content", None)
        if role != "user" or not isinstance(content, str) or not content.strip():
            continue
        if not skipped_current and not found and content.strip() == query.strip():
            skipped_current = True
            continue
        found.append(content.strip()[:500])
        if len(found) >= turns:
            break
    return found[::-1]


def with_pinned(
    chosen: list[Tool], tools: Sequence[Tool], pinned: list[str], k: int, *, everything: bool
) -> list[Tool]:
    """Pinned tools first (those that exist), then the ranking, within ``k`` unless
    the pinned ones alone exceed it; ``everything`` keeps the whole list."""
    by_name = {t.name: t for t in tools}
    by_name.update({t.name: t for t in chosen})
    head = [by_name[n] for n in dict.fromkeys(pinned) if n in by_name]
    names = {t.name for t in head}
    rest = [t for t in chosen if t.name not in names]
    if everything:
        return head + rest
    return head + rest[: max(0, k - len(head))]
