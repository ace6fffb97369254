"""Embeddings from any sentence-transformers model (optional: needs torch)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

from victor.protocols import IEmbeddingService

__all__ = ["SentenceTransformerEmbeddings"]


class SentenceTransformerEmbeddings(IEmbeddingService):
    """Wraps ``sentence_transformers.SentenceTransformer``; the library and the model are
    loaded on first use, so building this costs nothing. Use it for a model other than
    the shipped MiniLM, or a GPU (``device="cuda"``)."""

    def __init__(
        self,
        model_name: str = "sentence-transformers/all-MiniLM-L6-v2",
        *,
        device: str | None = None,
        batch_size: int = 32,
        model: Any = None,
    ) -> None:
        self.model_name = model_name
        self.device = device
        self.batch_size = batch_size
        self.cache_id = f"sentence-transformers:{model_name}"
        self._model = model
        self._lock = threading.Lock()
        if model is not None:
            self.dimension = int(model.get_sentence_embedding_dimension() or 0)

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:  # pragma: no cover - optional dependency
                    raise ImportError(
                        "SentenceTransformerEmbeddings needs: pip install sentence-transformers"
                    ) from exc
                self._model = SentenceTransformer(self.model_name, device=self.device)
                self.dimension = int(self._model.get_sentence_embedding_dimension() or 0)
            return self._model

    def encode(self, texts: Sequence[str]) -> Any:
        import numpy as np

        model = self._model or self._load()
        vectors = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    async def embed_batch(self, texts: Sequence[str]) -> Any:
        if self._model is None:
            await asyncio.to_thread(self._load)
        return await asyncio.to_thread(self.encode, list(texts))
