"""Builds each turn's system prompt from contributors."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Hashable, Sequence

from victor.protocols import IPromptContributor, PromptContext

logger = logging.getLogger(__name__)

__all__ = ["BasePromptContributor", "IPromptContributor", "PromptCoordinator"]


class BasePromptContributor(IPromptContributor):
    """A contributor with a priority and an optional cache.

    Set ``cache_ttl`` (seconds) to reuse a contribution for the same :meth:`cache_key`
    (by default the tenant): useful when it comes from a file or a database.
    """

    cache_ttl: float | None = None

    def __init__(self, priority: int = 0) -> None:
        self._priority = priority

    def priority(self) -> int:
        return getattr(self, "_priority", 0)

    def cache_key(self, context: PromptContext) -> Hashable:
        return context.tenant_id


class PromptCoordinator:
    """Joins the contributions, highest priority first, after the base system prompt.

    ``max_chars`` bounds the prompt: contributions that do not fit are left out, lowest
    priority first, and logged. A contributor that fails is skipped and logged; the turn
    goes on.
    """

    def __init__(
        self,
        contributors: Sequence[IPromptContributor] | None = None,
        *,
        max_chars: int = 32_000,
        separator: str = "\n\n",
    ) -> None:
        self.contributors = sorted(contributors or (), key=lambda c: -c.priority())
        self.max_chars = max_chars
        self.separator = separator
        # (id of the contributor, its key) -> (expiry, text, contributor); holding the
        # contributor keeps its id from being reused by another object.
        self._cache: dict[tuple[int, Hashable], tuple[float, str, object]] = {}
        self.max_cache_entries = 4096

    def add_contributor(self, contributor: IPromptContributor) -> None:
        self.contributors = sorted([*self.contributors, contributor], key=lambda c: -c.priority())

    async def _contribution(self, contributor: IPromptContributor, context: PromptContext) -> str:
        ttl = getattr(contributor, "cache_ttl", None)
        key = None
        if ttl:
            key = (id(contributor), contributor.cache_key(context))  # type: ignore[attr-defined]
            hit = self._cache.get(key)
            if hit is not None and hit[0] > time.monotonic():
                return hit[1]
        try:
            text = await contributor.get_contribution(context)
        except Exception:
            logger.exception("prompt contributor %r failed; its section is left out", contributor)
            return ""
        text = (text or "").strip()
        if key is not None:
            now = time.monotonic()
            if len(self._cache) >= self.max_cache_entries:
                self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
                while len(self._cache) >= self.max_cache_entries:  # oldest first
                    del self._cache[next(iter(self._cache))]
            self._cache[key] = (now + ttl, text, contributor)  # type: ignore[operator]
        return text

    async def build_system_prompt(self, context: PromptContext, base: str | None = None) -> str:
        if not self.contributors:
            return base or ""
        sections = await asyncio.gather(
            *(self._contribution(c, context) for c in self.contributors)
        )
        parts = [base] if base else []
        size = len(base or "")
        for contributor, text in zip(self.contributors, sections, strict=True):
            if not text:
                continue
            if size + len(text) + len(self.separator) > self.max_chars:
                logger.warning(
                    "system prompt budget of %d characters reached: leaving out %r",
                    self.max_chars,
                    contributor,
                )
                continue
            parts.append(text)
            size += len(text) + len(self.separator)
        return self.separator.join(parts)
