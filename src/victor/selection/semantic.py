"""Semantic scoring: cosine between the query and each tool, from sentence embeddings.

Each tool is embedded as two fields, its description (with its domain, tags and
parameter names) and its name split into words, and scored by
``(1 - w) * cos(q, description) + w * cos(q, name)``. The name field is a short, dense
label ("Research Helper") that a long description dilutes; ``w = 0.4`` was chosen with
the hybrid's other settings, leaving one data set out (benchmarks/RESULTS.md). The two
fields fold into one matrix, so a query still costs one matrix-vector product.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from victor.selection.text import split_identifier

if TYPE_CHECKING:
    from victor.protocols import IEmbeddingService, Tool
    from victor.selection.embeddings.cache import CachedEmbedder

__all__ = [
    "DEFAULT_NAME_WEIGHT",
    "QueryEncoder",
    "SemanticIndex",
    "description_field",
    "name_field",
]

DEFAULT_NAME_WEIGHT = 0.4


def description_field(tool: Tool) -> str:
    """``"<domain> <tags>: <description> (parameters: ...)"``, the fields keyword
    selection reads too (the name when there is nothing else)."""
    head = " ".join(p for p in [tool.domain or "", " ".join(tool.tags)] if p)
    parts = [f"{head}:" if head else "", tool.description.strip()]
    props = tool.parameters.get("properties") or {}
    if props:
        names = ", ".join(split_identifier(str(p)) for p in props)
        parts.append(f"(parameters: {names})")
    text = " ".join(p for p in parts if p)
    return text or split_identifier(tool.name) or tool.name


def name_field(tool: Tool) -> str:
    return split_identifier(tool.name) or tool.name


class SemanticIndex:
    """One unit vector per tool; :meth:`scores` is the blended cosine of a query."""

    def __init__(self, matrix: Any) -> None:
        self.matrix = matrix

    @classmethod
    async def build(
        cls,
        tools: Sequence[Tool],
        embedder: CachedEmbedder,
        *,
        name_weight: float = DEFAULT_NAME_WEIGHT,
        offload_min: int | None = None,
    ) -> SemanticIndex:
        """Embed ``tools`` (through the cache) and fold the two fields into one matrix.
        With more than ``offload_min`` tools the text and matrix work runs in a worker
        thread (~25 ms at 2,000 tools), keeping the event loop free."""
        offload = offload_min is not None and len(tools) > offload_min
        if offload:
            texts = await asyncio.to_thread(_field_texts, tools, name_weight)
        else:
            texts = _field_texts(tools, name_weight)
        vectors = await embedder.embed_documents(texts)
        if offload:
            return cls(await asyncio.to_thread(_fold, vectors, len(tools), name_weight))
        return cls(_fold(vectors, len(tools), name_weight))

    def scores(self, query_vector: Any) -> Any:
        import numpy as np

        # einsum, not ``@``: BLAS would spread this over threads that spin against the
        # rest of a busy server; measured on 2 busy cores at 10,000 tools: p95 8 ms with
        # BLAS, 1.4 ms single-threaded (0.3 vs 0.6 ms median).
        return np.einsum("ij,j->i", self.matrix, query_vector)


def _field_texts(tools: Sequence[Tool], name_weight: float) -> list[str]:
    texts = [description_field(t) for t in tools]
    if name_weight > 0:
        texts += [name_field(t) for t in tools]
    return texts


def _fold(vectors: Any, n: int, name_weight: float) -> Any:
    import numpy as np

    if name_weight > 0 and n:
        matrix = (1.0 - name_weight) * vectors[:n] + name_weight * vectors[n:]
    else:
        matrix = vectors[:n]
    return np.ascontiguousarray(matrix, dtype=np.float32)


class QueryEncoder:
    """Query vectors with a small LRU: the same text is often ranked twice in a turn
    (a custom strategy calling semantic then hybrid, a domain classifier)."""

    def __init__(self, service: IEmbeddingService, size: int = 1024) -> None:
        self.service = service
        self.size = size
        self._lru: OrderedDict[str, Any] = OrderedDict()

    async def encode(self, text: str) -> Any:
        import numpy as np

        hit = self._lru.get(text)
        if hit is not None:
            self._lru.move_to_end(text)
            return hit
        vector = np.asarray(await self.service.embed_batch([text]), dtype=np.float32)[0]
        norm = float(np.linalg.norm(vector))
        if norm > 0 and abs(norm - 1.0) > 1e-3:
            vector = vector / norm
        self._lru[text] = vector
        if len(self._lru) > self.size:
            self._lru.popitem(last=False)
        return vector

    def clear(self) -> None:
        self._lru.clear()
