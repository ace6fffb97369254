"""Ready-made selection strategies: built-in rankings as objects, cost-aware, by domain.

Each is an :class:`IToolSelectionStrategy`, so it can be a coordinator's
``default_strategy`` or be registered under a name and chosen per session::

    coordinator.register_strategy("cheap", CostAwareStrategy(max_cost_per_call=0.001))
    # session config: {"tool_selection": {"strategy": "cheap"}}

A strategy whose rule is a hard limit (never offer these tools) declares it with an
optional ``allowed(self, tool) -> bool`` method: the coordinator then keeps disallowed
tools out of the offered set even when the strategy fails or returns nothing and the
built-in fallback ranks the catalogue instead.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from victor.protocols import IToolSelectionCoordinator, IToolSelectionStrategy, Tool

if TYPE_CHECKING:
    from victor.protocols import IEmbeddingService

__all__ = [
    "DEFAULT_TIER_COSTS",
    "BuiltinStrategy",
    "CostAwareStrategy",
    "DomainStrategy",
    "EmbeddingDomainClassifier",
    "HybridStrategy",
    "KeywordStrategy",
    "SemanticStrategy",
]

# Rough cost of one call per tier, in USD; what a budget is counted in.
DEFAULT_TIER_COSTS: dict[str, float] = {"free": 0.0, "low": 0.001, "medium": 0.01, "high": 0.1}


class BuiltinStrategy(IToolSelectionStrategy):
    """A built-in ranking (``keyword``, ``semantic``, ``hybrid``) as a strategy object."""

    ranking = "hybrid"

    def __init__(self, k: int | None = None) -> None:
        self.k = k

    async def select_tools(
        self,
        query: str,
        available_tools: list[Tool],
        selection_coordinator: IToolSelectionCoordinator,
    ) -> list[Tool]:
        return await selection_coordinator.select_tools(
            query, available_tools, k=self.k, strategy=self.ranking
        )


class KeywordStrategy(BuiltinStrategy):
    ranking = "keyword"


class SemanticStrategy(BuiltinStrategy):
    ranking = "semantic"


class HybridStrategy(BuiltinStrategy):
    ranking = "hybrid"


async def _rank(
    coordinator: IToolSelectionCoordinator,
    inner: str | IToolSelectionStrategy,
    query: str,
    tools: list[Tool],
    k: int | None,
) -> list[Tool]:
    if isinstance(inner, IToolSelectionStrategy):
        return await inner.select_tools(query, tools, coordinator)
    return await coordinator.select_tools(query, tools, k=k, strategy=inner)


class CostAwareStrategy(IToolSelectionStrategy):
    """The most relevant tools that fit a cost policy.

    Tools whose tier costs more than ``max_cost_per_call`` are never offered; the rest
    are ranked by ``inner`` (a built-in name or a strategy) and taken best first while
    the summed per-call cost of the offered set stays within ``budget`` (None: no cap),
    so a few expensive tools cannot crowd out cheap ones. ``tier_costs`` maps each
    ``cost_tier`` to a cost per call (default :data:`DEFAULT_TIER_COSTS`).
    """

    def __init__(
        self,
        max_cost_per_call: float | None = 0.01,
        *,
        budget: float | None = None,
        tier_costs: Mapping[str, float] | None = None,
        inner: str | IToolSelectionStrategy = "hybrid",
        k: int | None = None,
    ) -> None:
        self.max_cost_per_call = max_cost_per_call
        self.budget = budget
        self.tier_costs = dict(DEFAULT_TIER_COSTS if tier_costs is None else tier_costs)
        self.inner = inner
        self.k = k

    def cost(self, tool: Tool) -> float:
        # Unknown tiers count as the most expensive known one: fail closed.
        return self.tier_costs.get(tool.cost_tier, max(self.tier_costs.values(), default=0.0))

    def allowed(self, tool: Tool) -> bool:
        """The hard filter: within ``max_cost_per_call``. The coordinator applies it to
        its fallback too, so an expensive tier is never offered, even when nothing is
        affordable (then no tool is offered)."""
        limit = self.max_cost_per_call
        return limit is None or self.cost(tool) <= limit

    async def select_tools(
        self,
        query: str,
        available_tools: list[Tool],
        selection_coordinator: IToolSelectionCoordinator,
    ) -> list[Tool]:
        affordable = [t for t in available_tools if self.allowed(t)]
        if not affordable:
            return []
        # Rank everything affordable when a budget may skip some of the best.
        k = len(affordable) if self.budget is not None else self.k
        ranked = await _rank(selection_coordinator, self.inner, query, affordable, k)
        if self.budget is None:
            return ranked
        chosen: list[Tool] = []
        spent = 0.0
        cap = self.k if self.k is not None else getattr(selection_coordinator, "max_tools", None)
        for tool in ranked:
            cost = self.cost(tool)
            if spent + cost <= self.budget:
                chosen.append(tool)
                spent += cost
            if cap is not None and len(chosen) >= cap:
                break
        return chosen


class EmbeddingDomainClassifier:
    """Classifies a query into a domain by embedding similarity to example phrases.

    ``examples`` maps each domain to a few phrases typical of it. A query gets the
    domain of its most similar example (nearest neighbour: robust to domains with
    varied phrasing, unlike a centroid) when that cosine reaches ``threshold``, else
    ``default``. With MiniLM, related short texts score 0.2-0.7 and unrelated ones below
    0.15, hence the default 0.2. Results are cached per query (an LRU of ``cache_size``).
    """

    def __init__(
        self,
        examples: Mapping[str, Sequence[str]],
        *,
        embeddings: IEmbeddingService | None = None,
        default: str = "general",
        threshold: float = 0.2,
        cache_size: int = 1024,
    ) -> None:
        self.examples = {d: [p for p in phrases if p] for d, phrases in examples.items()}
        if not any(self.examples.values()):
            raise ValueError("examples must give at least one phrase for some domain")
        self.default = default
        self.threshold = threshold
        self.cache_size = cache_size
        self._embeddings = embeddings
        self._matrix: Any = None
        self._labels: list[str] = []
        self._cache: OrderedDict[str, str] = OrderedDict()

    @classmethod
    def from_tools(cls, tools: Sequence[Tool], **kwargs: Any) -> EmbeddingDomainClassifier:
        """Examples from the tools themselves: each tool's description under its domain."""
        examples: dict[str, list[str]] = {}
        for tool in tools:
            if tool.domain:
                from victor.selection.semantic import description_field

                examples.setdefault(tool.domain, []).append(description_field(tool))
        return cls(examples, **kwargs)

    @property
    def embeddings(self) -> IEmbeddingService:
        if self._embeddings is None:
            from victor.selection.embeddings import default_embeddings

            self._embeddings = default_embeddings()
        return self._embeddings

    async def _ensure(self) -> None:
        if self._matrix is not None:
            return
        import numpy as np

        labels = [d for d, phrases in self.examples.items() for _ in phrases]
        texts = [p for phrases in self.examples.values() for p in phrases]
        vectors = np.asarray(await self.embeddings.embed_batch(texts), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self._matrix = vectors / np.maximum(norms, 1e-12)
        self._labels = labels

    async def scores(self, query: str) -> dict[str, float]:
        """Best cosine of ``query`` to each domain's examples."""
        import numpy as np

        await self._ensure()
        vector = np.asarray(await self.embeddings.embed_batch([query]), dtype=np.float32)[0]
        vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
        sims = self._matrix @ vector
        best: dict[str, float] = {}
        for label, sim in zip(self._labels, sims.tolist(), strict=True):
            if sim > best.get(label, -2.0):
                best[label] = sim
        return best

    async def classify(self, query: str) -> str:
        """The query's domain, or ``default`` when no domain is similar enough."""
        hit = self._cache.get(query)
        if hit is not None:
            self._cache.move_to_end(query)
            return hit
        scores = await self.scores(query)
        domain, score = max(scores.items(), key=lambda kv: kv[1])
        result = domain if score >= self.threshold else self.default
        self._cache[query] = result
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return result


class DomainStrategy(IToolSelectionStrategy):
    """Offers the tools of the query's domain, ranked by ``inner``.

    ``classifier`` is anything with ``async classify(query) -> str`` (for example an
    :class:`EmbeddingDomainClassifier`). A tool belongs to a domain when its
    ``tool.domain`` says so or ``domain_tools[domain]`` names it. When the domain has no
    tool (or is the classifier's default), all tools are ranked instead, so a general
    question still gets the best general tools.
    """

    def __init__(
        self,
        classifier: Any,
        *,
        domain_tools: Mapping[str, Sequence[str]] | None = None,
        inner: str | IToolSelectionStrategy = "hybrid",
        k: int | None = None,
    ) -> None:
        self.classifier = classifier
        self.domain_tools = {d: set(names) for d, names in (domain_tools or {}).items()}
        self.inner = inner
        self.k = k

    async def select_tools(
        self,
        query: str,
        available_tools: list[Tool],
        selection_coordinator: IToolSelectionCoordinator,
    ) -> list[Tool]:
        domain = await self.classifier.classify(query)
        names = self.domain_tools.get(domain, set())
        in_domain = [t for t in available_tools if t.domain == domain or t.name in names]
        pool = in_domain or available_tools
        return await _rank(selection_coordinator, self.inner, query, pool, self.k)
