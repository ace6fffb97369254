"""Builds each turn's system prompt from contributors."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Hashable, Sequence

from victor.agent.coordinators.priority import by_priority
from victor.agent.coordinators.prompt_contributors import (
    BasePromptContributor,
    FileContributor,
    StaticContributor,
    TenantPromptContributor,
)
from victor.protocols import IPromptContributor, PromptContext

logger = logging.getLogger(__name__)

__all__ = [
    "BasePromptContributor",
    "FileContributor",
    "IPromptContributor",
    "PromptCoordinator",
    "StaticContributor",
    "TenantPromptContributor",
]


class PromptCoordinator:
    """Joins the base system prompt and the contributions, highest priority first.

    ``max_chars`` bounds the prompt: when the contributions exceed it, they are left
    out lowest priority first until it fits (the base prompt is never cut), with a
    warning. A contributor that raises is skipped and logged; the turn goes on.
    Contributions of contributors with a ``cache_ttl`` are cached per contributor,
    tenant and :meth:`BasePromptContributor.cache_key` (``max_cache_entries`` kept).
    """

    def __init__(
        self,
        contributors: Sequence[IPromptContributor] | None = None,
        *,
        max_chars: int = 32_000,
        separator: str = "\n\n",
        max_cache_entries: int = 4096,
    ) -> None:
        self.contributors = by_priority(
            contributors or (), "get_contribution", "prompt contributor", highest_first=True
        )
        self.max_chars = max_chars
        self.separator = separator
        self.max_cache_entries = max_cache_entries
        # (id of the contributor, tenant, its key) -> (expiry, text, contributor); holding
        # the contributor keeps its id from being reused by another object.
        self._cache: OrderedDict[tuple[int, str | None, Hashable], tuple[float, str, object]] = (
            OrderedDict()
        )
        self._warned: set[tuple[str | None, tuple[str, ...]]] = set()
        self._failing: set[int] = set()  # ids of contributors whose last call raised

    def add_contributor(self, contributor: IPromptContributor) -> None:
        self.contributors = by_priority(
            [*self.contributors, contributor],
            "get_contribution",
            "prompt contributor",
            highest_first=True,
        )

    def _key(
        self, contributor: IPromptContributor, context: PromptContext
    ) -> tuple[int, str | None, Hashable] | None:
        if not getattr(contributor, "cache_ttl", None):
            return None
        cache_key = getattr(contributor, "cache_key", None)
        extra = cache_key(context) if cache_key is not None else None
        return (id(contributor), context.tenant_id, extra)

    async def _contribution(
        self,
        contributor: IPromptContributor,
        context: PromptContext,
        key: tuple[int, str | None, Hashable] | None,
    ) -> str:
        try:
            text = await contributor.get_contribution(context)
            if text is not None and not isinstance(text, str):
                raise TypeError(f"get_contribution returned {type(text).__name__}, not a str")
        except Exception as exc:
            if id(contributor) not in self._failing:  # once per outage, not once per turn
                self._failing.add(id(contributor))
                logger.error(
                    "prompt contributor %r failed, its section left out until it works "
                    "again: %s: %s",
                    contributor,
                    type(exc).__name__,
                    exc,
                    exc_info=logger.isEnabledFor(logging.DEBUG),
                )
            return ""
        if self._failing and id(contributor) in self._failing:
            self._failing.discard(id(contributor))
            logger.warning("prompt contributor %r works again", contributor)
        text = (text or "").strip()
        if key is not None:
            ttl: float = contributor.cache_ttl  # type: ignore[attr-defined]
            self._cache[key] = (time.monotonic() + ttl, text, contributor)
            self._cache.move_to_end(key)
            while len(self._cache) > self.max_cache_entries:
                self._cache.popitem(last=False)
        return text

    async def build_system_prompt(self, context: PromptContext, base: str | None = None) -> str:
        if not self.contributors:
            return base or ""
        now = time.monotonic()
        texts: list[str | None] = []
        misses: list[tuple[int, tuple[int, str | None, Hashable] | None]] = []
        for index, contributor in enumerate(self.contributors):
            key = self._key(contributor, context)
            hit = self._cache.get(key) if key is not None else None
            if hit is not None and hit[0] > now:
                texts.append(hit[1])
            else:
                texts.append(None)
                misses.append((index, key))
        # One after another: with their caches warm most turns have nothing to fetch,
        # and awaiting beats scheduling tasks (give a slow contributor a cache_ttl).
        for index, key in misses:
            texts[index] = await self._contribution(self.contributors[index], context, key)
        return self._join(context, base, texts)

    def _join(self, context: PromptContext, base: str | None, texts: list[str | None]) -> str:
        sep = len(self.separator)
        kept = [(c, t) for c, t in zip(self.contributors, texts, strict=True) if t]
        size = len(base) if base else -sep
        size += sum(len(t) + sep for _, t in kept)
        left_out: list[str] = []
        while kept and size > self.max_chars:  # the lowest priority goes first
            contributor, text = kept.pop()
            size -= len(text) + sep
            left_out.append(repr(contributor))
        if left_out:
            self._warn(context.tenant_id, tuple(left_out), size)
        parts = [base] if base else []
        parts.extend(t for _, t in kept)
        return self.separator.join(parts)

    def _warn(self, tenant: str | None, left_out: tuple[str, ...], size: int) -> None:
        # Once per tenant and set of contributors left out, not once per turn.
        if (tenant, left_out) in self._warned:
            return
        if len(self._warned) > 1000:
            self._warned.clear()
        self._warned.add((tenant, left_out))
        logger.warning(
            "system prompt over its budget of %d characters%s: left out %s (lowest priority first)",
            self.max_chars,
            f" for tenant {tenant!r}" if tenant else "",
            ", ".join(left_out),
        )

    async def aclose(self) -> None:
        """Close the contributors that hold connections (tenant tables)."""
        for contributor in self.contributors:
            close = getattr(contributor, "aclose", None)
            if close is not None:
                try:
                    await close()
                except Exception:
                    logger.exception("error while closing %r", contributor)
