"""Text that every store and every API can take.

Python strings may hold what UTF-8 cannot encode: lone surrogates (from a clipboard, a
badly decoded file, JSON with a broken ``\\ud800`` escape) and NUL, which PostgreSQL
refuses. Left in a message, such text breaks the write of the turn and then every later
call of the session (an SDK cannot encode the history). Messages, tool calls and model
answers are therefore cleaned when they are built: a surrogate pair becomes the character
it stands for, anything else unencodable becomes U+FFFD, the same way everywhere.
"""

from __future__ import annotations

from typing import Any

REPLACEMENT = "\ufffd"

_repairs = 0


def repair_count() -> int:
    """How many texts this process has had to repair."""
    return _repairs


def _is_clean(text: str) -> bool:
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def clean_text(text: str) -> str:
    """``text`` with surrogate pairs joined, lone surrogates and NUL as U+FFFD."""
    if _is_clean(text):
        return text
    global _repairs
    _repairs += 1
    joined = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return joined.replace("\x00", REPLACEMENT)


def clean_value(value: Any) -> Any:
    """:func:`clean_text` applied to every string of a JSON-like value (keys included)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_value(k): clean_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_value(v) for v in value]
    return value
