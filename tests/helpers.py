"""Small test doubles shared by the test modules."""

from __future__ import annotations

from collections.abc import Sequence

from victor.protocols import AnalyticsEvent, ExportResult, IAnalyticsExporter, IEmbeddingService


class CollectingExporter(IAnalyticsExporter):
    """Keeps every exported event in memory."""

    def __init__(self) -> None:
        self.events: list[AnalyticsEvent] = []
        self.closed = False

    async def export(self, events: Sequence[AnalyticsEvent]) -> ExportResult:
        self.events.extend(events)
        return ExportResult(success=True, exported_count=len(events))

    async def shutdown(self) -> None:
        self.closed = True

    def of_type(self, kind: str) -> list[AnalyticsEvent]:
        return [e for e in self.events if e.type == kind]


class HashingEmbeddings(IEmbeddingService):
    """Deterministic bag-of-words vectors (each word hashed to a dimension, unit length):
    texts sharing words are close. For properties that must not depend on a real model."""

    dimension = 64
    model_name = "hashing"

    def __init__(self) -> None:
        self.calls = 0

    async def embed_batch(self, texts: Sequence[str]):
        import zlib

        import numpy as np

        self.calls += 1
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, zlib.crc32(word.encode()) % self.dimension] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    async def embed(self, text: str):
        return (await self.embed_batch([text]))[0]
