"""Blending keyword and semantic scores, and picking the top k.

BM25 scores are unbounded and their scale depends on the catalogue and the query;
cosines live in [-1, 1] with a scale that depends on the model. Each signal is
standardised over the candidate tools for this query (z-score: how far a tool stands
out from the rest of the catalogue), then blended::

    score = a * z(semantic) + (1 - a) * z(keyword)
    a = alpha + 0.4 * (0.5 - coverage)      (clipped to [0, 1])

``coverage`` is the share of the query's words that the catalogue's BM25 index knows
(:meth:`BM25Index.coverage`): a query in the catalogue's own words gives BM25 more say
(``a`` = 0.6 at the default ``alpha = 0.8``), a query in other words less (``a`` = 1.0
when none is known). Label-free, per query, and what reconciles catalogues that want
different fixed weights: chosen leaving one data set out, over a fixed ``a``, min-max
blending, reciprocal-rank fusion, and ``a`` set from how sharply either signal
separates its top hit, on MetaTool, LiveMCPBench and Gorilla APIBench (see
benchmarks/RESULTS.md, "Tool selection"). ``alpha`` is the weight of a query half of
whose words are known; ``alpha = 0.8`` and the slope 0.4 are the choice on all three.
"""

from __future__ import annotations

from typing import Any

__all__ = ["COVERAGE_SLOPE", "DEFAULT_ALPHA", "blend", "query_alpha", "standardise", "top_k"]

DEFAULT_ALPHA = 0.8
COVERAGE_SLOPE = 0.4


def query_alpha(alpha: float, coverage: float, slope: float = COVERAGE_SLOPE) -> float:
    """The semantic weight for one query: ``alpha`` moved by ``slope`` per unit of the
    share of its words the keyword index knows, around one half; within [0, 1]."""
    return min(1.0, max(0.0, float(alpha) + slope * (0.5 - float(coverage))))


def standardise(scores: Any) -> Any:
    """``(x - mean) / std``; a constant vector (no signal) becomes all zeros."""
    import numpy as np

    scores = np.asarray(scores, dtype=np.float32)
    if scores.size == 0:
        return scores
    spread = float(scores.std())
    if spread <= 1e-9:
        return np.zeros_like(scores)
    return (scores - float(scores.mean())) / spread


def blend(semantic: Any, keyword: Any, alpha: float = DEFAULT_ALPHA) -> Any:
    """``alpha * z(semantic) + (1 - alpha) * z(keyword)``."""
    alpha = min(1.0, max(0.0, float(alpha)))
    return alpha * standardise(semantic) + (1.0 - alpha) * standardise(keyword)


def top_k(scores: Any, k: int) -> list[int]:
    """Indices of the ``k`` best scores, best first; ties keep catalogue order."""
    import numpy as np

    n = len(scores)
    if k <= 0 or n == 0:
        return []
    if k < n:
        # O(n): the k-th best value, then everything above it plus the earliest ties.
        kth = scores[np.argpartition(-scores, k - 1)[k - 1]]
        above = np.flatnonzero(scores > kth)
        ties = np.flatnonzero(scores == kth)[: k - len(above)]
        chosen = np.sort(np.concatenate([above, ties]))
        order = chosen[np.argsort(-scores[chosen], kind="stable")]
    else:
        order = np.argsort(-scores, kind="stable")
    return order.tolist()
