"""Embeddings from the OpenAI API (or any OpenAI-compatible server), official SDK."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from victor.protocols import IEmbeddingService

__all__ = ["OpenAIEmbeddings"]

_DEFAULT_BASE_URL = "https://api.openai.com/v1"
_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}


class OpenAIEmbeddings(IEmbeddingService):
    """``client.embeddings.create`` in batches, vectors L2-normalised.

    ``client`` is an ``openai.AsyncOpenAI`` (built on first use when omitted, from
    ``base_url``/``api_key`` or the environment), so Azure, Ollama or vLLM endpoints work
    through the same SDK. Each tool text is sent once: vectors are cached on disk by the
    selection layer, under an id naming the endpoint (the same model name on two servers
    may be two different models). :meth:`aclose` closes a client built here; a client
    passed in belongs to the caller.
    """

    def __init__(
        self,
        model: str = "text-embedding-3-small",
        *,
        client: Any = None,
        dimensions: int | None = None,
        batch_size: int = 256,
        base_url: str | None = None,
        api_key: str | None = None,
    ) -> None:
        self.model_name = model
        self.requested_dimensions = dimensions
        self.dimension = dimensions or _DIMENSIONS.get(model, 0)
        self.batch_size = batch_size
        self.base_url = base_url
        self._api_key = api_key
        self._client = client
        self._owns_client = client is None

    @property
    def endpoint(self) -> str:
        """The API base URL the vectors come from."""
        url = getattr(self._client, "base_url", None) or self.base_url
        url = url or os.environ.get("OPENAI_BASE_URL") or _DEFAULT_BASE_URL
        return str(url).rstrip("/")

    @property
    def cache_id(self) -> str:
        return f"openai:{self.endpoint}:{self.model_name}:{self.requested_dimensions or 'native'}"

    def _get_client(self) -> Any:
        if self._client is None:
            from openai import AsyncOpenAI

            self._client = AsyncOpenAI(base_url=self.base_url, api_key=self._api_key)
            self._owns_client = True
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP client this adapter built (idempotent; the next call builds a
        new one). A client passed in is left open for its owner."""
        client = self._client
        if client is None or not self._owns_client:
            return
        self._client = None
        await client.close()

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
