"""Blending keyword and semantic scores, and picking the top k.

BM25 scores are unbounded and their scale depends on the catalogue and the query;
cosines live in [-1, 1] with a scale that depends on the model. Each signal is
standardised over the candidate tools for this query (z-score: how far a tool stands
out from the rest of the catalogue), then blended::

    score = alpha * z(semantic) + (1 - alpha) * z(keyword)

Scale-free and query-dependent at once: a query whose words pick out a few tools
sharply gives BM25 large z-scores and so more say, while a query that matches no
indexed term leaves BM25 at zero and the semantic side alone ranks. Chosen, leaving
one data set out, over min-max blending (which stretches a weak, noisy BM25 match to
full weight) and reciprocal-rank fusion (which throws the margins away), on MetaTool,
LiveMCPBench and Gorilla APIBench: see benchmarks/RESULTS.md, "Tool selection".
``alpha = 0.75`` is the choice on all three; the folds chose 0.7-0.8.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEFAULT_ALPHA", "blend", "standardise", "top_k"]

DEFAULT_ALPHA = 0.75


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
