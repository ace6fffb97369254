"""Older messages chosen by meaning: relevant to the query, and not all alike."""

from __future__ import annotations

from typing import Any

from victor.context.groups import assemble, query_of, split_groups
from victor.context.strategies import BaseCompactionStrategy
from victor.protocols import Context, IEmbeddingService

__all__ = ["SemanticCompactionStrategy"]


class SemanticCompactionStrategy(BaseCompactionStrategy):
    """Keeps the last ``recent_turns`` turns, then picks older messages by maximal
    marginal relevance (MMR): each pick maximises
    ``(1 - diversity) * relevance - diversity * redundancy``, where relevance is the cosine
    to the query and redundancy the highest cosine to a message already picked (diversity
    0: relevance only). Picks go on while they fit the budget; messages whose relevance is
    below ``min_relevance`` are never picked.

    Embeddings come from ``embeddings.embed_batch`` (an :class:`IEmbeddingService`); by
    default the local ONNX model shipped with Victor (the ``[embeddings]`` extra), loaded
    on first use.
    """

    def __init__(
        self,
        embeddings: IEmbeddingService | None = None,
        *,
        recent_turns: int = 1,
        diversity: float = 0.3,
        min_relevance: float = 0.1,
    ) -> None:
        if recent_turns < 0:
            raise ValueError(f"recent_turns must be >= 0, not {recent_turns}")
        if not 0.0 <= diversity <= 1.0:
            raise ValueError(f"diversity must be between 0 and 1, not {diversity}")
        self._embeddings = embeddings
        self.recent_turns = recent_turns
        self.diversity = diversity
        self.min_relevance = min_relevance

    @property
    def embeddings(self) -> IEmbeddingService:
        if self._embeddings is None:
            from victor.selection.embeddings import default_embeddings

            self._embeddings = default_embeddings()
        return self._embeddings

    async def compact(self, context: Context) -> Context:
        budget = context.max_tokens
        if budget is None:
            return context
        groups = split_groups(context.messages)
        keep, used, first_recent = self._keep_recent(groups, self.recent_turns, budget)
        candidates = [
            i
            for i in range(first_recent)
            if i not in keep and not groups[i].is_system and used + groups[i].tokens <= budget
        ]
        query = query_of(context)
        if candidates and query:
            vectors = await self.embeddings.embed_batch(
                [query, *(groups[i].text(2000) for i in candidates)]
            )
            for i in self._mmr(
                vectors, candidates, [groups[i].tokens for i in candidates], budget - used
            ):
                keep.add(i)
        return context.model_copy(update={"messages": assemble(groups, keep)})

    def _mmr(self, vectors: Any, candidates: list[int], costs: list[int], room: int) -> list[int]:
        """The candidates picked by MMR within ``room`` tokens."""
        import numpy as np

        matrix = np.asarray(vectors, dtype=np.float32)
        query, docs = matrix[0], matrix[1:]
        relevance = docs @ query
        redundancy = np.zeros(len(candidates), dtype=np.float32)
        open_ = np.array([r >= self.min_relevance for r in relevance])
        picked: list[int] = []
        while room > 0 and open_.any():
            score = (1 - self.diversity) * relevance - self.diversity * redundancy
            score[~open_] = -np.inf
            best = int(np.argmax(score))
            open_[best] = False
            if costs[best] > room:
                continue
            room -= costs[best]
            picked.append(candidates[best])
            redundancy = np.maximum(redundancy, docs @ docs[best])
        return picked
