"""Embeddings from the OpenAI API (or any OpenAI-compatible server), official SDK."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from victor.protocols import IEmbeddingService

__all__ = ["OpenAIEmbeddings"]

_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}


class OpenAIEmbeddings(IEmbeddingService):
    """``client.embeddings.create`` in batches, vectors L2-normalised.

    ``client`` is an ``openai.AsyncOpenAI`` (built from the environment when omitted, on
    first use), so Azure, Ollama or vLLM endpoints work through the same SDK. Each tool
    text is sent once: vectors are cached on disk by the selection layer.
    """

    def __init__(
        self,
        model: str = "text-embedding-3-small",
        *,
        client: Any = None,
        dimensions: int | None = None,
        batch_size: int = 256,
    ) -> None:
        self.model_name = model
        self.requested_dimensions = dimensions
        self.dimension = dimensions or _DIMENSIONS.get(model, 0)
        self.batch_size = batch_size
        self.cache_id = f"openai:{model}:{dimensions or 'native'}"
        self._client = client

    def _get_client(self) -> Any:
        if self._client is None:
            from openai import AsyncOpenAI

            self._client = AsyncOpenAI()
        return self._client

    async def embed_batch(self, texts: Sequence[str]) -> Any:
        import numpy as np

        client = self._get_client()
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            chunk = [t or " " for t in texts[start : start + self.batch_size]]
            extra = {"dimensions": self.requested_dimensions} if self.requested_dimensions else {}
            response = await client.embeddings.create(model=self.model_name, input=chunk, **extra)
            ordered = sorted(response.data, key=lambda d: d.index)
            rows.extend(list(d.embedding) for d in ordered)
        vectors = np.asarray(rows, dtype=np.float32).reshape(len(rows), -1)
        if vectors.shape[0] and not self.dimension:
            self.dimension = int(vectors.shape[1])
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)
