"""Retrieval metrics for tool selection: Recall@k, NDCG@k, MRR (binary relevance).

Rankings are lists of tool names; several tools may share a name across servers, so a
name counts once, at its first position.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

__all__ = ["dedupe", "mrr", "ndcg_at_k", "recall_at_k"]


def dedupe(ranked: Sequence[str]) -> list[str]:
    """Names in order of first appearance."""
    return list(dict.fromkeys(ranked))


def recall_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Share of the relevant tools found in the first ``k``."""
    if not relevant:
        return 0.0
    top = set(dedupe(ranked)[:k])
    return sum(1 for r in set(relevant) if r in top) / len(set(relevant))


def ndcg_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Normalised discounted cumulative gain at ``k`` with binary gains."""
    wanted = set(relevant)
    if not wanted:
        return 0.0
    dcg = sum(
        1.0 / math.log2(pos + 2) for pos, name in enumerate(dedupe(ranked)[:k]) if name in wanted
    )
    ideal = sum(1.0 / math.log2(pos + 2) for pos in range(min(k, len(wanted))))
    return dcg / ideal


def mrr(ranked: Sequence[str], relevant: Collection[str]) -> float:
    """Reciprocal rank of the first relevant tool (0 when none is ranked)."""
    wanted = set(relevant)
    for pos, name in enumerate(dedupe(ranked)):
        if name in wanted:
            return 1.0 / (pos + 1)
    return 0.0
