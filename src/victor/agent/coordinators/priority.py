"""Config providers and prompt contributors in the order of their ``priority()``, each
checked to be one when it is added (a wrong object is a clear error then, not an
``AttributeError`` in the middle of a turn)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

__all__ = ["by_priority"]

T = TypeVar("T")


def _priority(item: object, method: str, what: str) -> int:
    if not callable(getattr(item, method, None)) or not callable(getattr(item, "priority", None)):
        raise TypeError(f"a {what} has {method}() and priority(); {item!r} has not")
    priority = item.priority()  # type: ignore[attr-defined]
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise TypeError(
            f"{what} {item!r}: priority() must return an int, not {type(priority).__name__}"
        )
    return priority


def by_priority(
    items: Iterable[T], method: str, what: str, *, highest_first: bool = False
) -> list[T]:
    """``items`` sorted by priority (lowest first, or highest first); each must have
    ``method`` and a ``priority()`` returning an int (``TypeError`` otherwise)."""
    keyed = [(_priority(item, method, what), item) for item in items]
    keyed.sort(key=lambda pair: -pair[0] if highest_first else pair[0])
    return [item for _, item in keyed]
