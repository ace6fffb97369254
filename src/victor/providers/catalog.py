"""What Victor knows of common models without asking them: context window sizes."""

from __future__ import annotations

from functools import lru_cache

# Tokens. Matched by longest prefix, so dated snapshots resolve to their family.
CONTEXT_WINDOWS: dict[str, int] = {
    "gpt-4o": 128_000,
    "gpt-4o-mini": 128_000,
    "gpt-4.1": 1_047_576,
    "gpt-4.1-mini": 1_047_576,
    "gpt-4.1-nano": 1_047_576,
    "gpt-5": 400_000,
    "o3": 200_000,
    "o4-mini": 200_000,
    "claude": 200_000,
}


@lru_cache(maxsize=1024)
def context_window(model: str | None, default: int) -> int:
    if not model:
        return default
    name = model.rsplit("/", 1)[-1].lower()
    best = ""
    for prefix in CONTEXT_WINDOWS:
        if name.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return CONTEXT_WINDOWS[best] if best else default
