"""Document embeddings cached by content hash, in memory and on disk.

Embedding a catalogue of tools is the one slow step of semantic selection (~2 ms a
tool); the vectors only depend on the model and the text, so they are kept in a SQLite
file per model under ``Settings().data_dir / "embeddings"``. A process restart, a second
coordinator or a subset of the same tools (a strategy filtering by cost) then costs a
lookup instead of a model run. The disk cache is best effort: any I/O error disables it
with a warning and selection goes on in memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from victor.protocols import IEmbeddingService

logger = logging.getLogger(__name__)

__all__ = ["CachedEmbedder", "EmbeddingCache", "default_cache_dir", "service_cache_id"]


def default_cache_dir() -> Path:
    """``<Settings().data_dir>/embeddings``."""
    from victor.config import Settings

    return Settings().data_dir / "embeddings"


def service_cache_id(service: IEmbeddingService) -> str:
    """What identifies a service's vectors: its ``cache_id`` or class, model and size."""
    explicit = getattr(service, "cache_id", None)
    if explicit:
        return str(explicit)
    return f"{type(service).__name__}:{service.model_name}:{service.dimension}"


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:16]


class EmbeddingCache:
    """A SQLite table of ``hash(text) -> float32 vector`` for one embedding model."""

    def __init__(self, directory: str | Path, model_id: str) -> None:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model_id).strip("_")[:80]
        digest = hashlib.sha256(model_id.encode()).hexdigest()[:8]
        self.path = Path(directory) / f"{slug}-{digest}.sqlite"
        self.model_id = model_id
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._disabled = False

    def _connect(self) -> sqlite3.Connection | None:
        if self._conn is None and not self._disabled:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=5.0, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vec BLOB NOT NULL)"
                )
                self._conn = conn
            except (sqlite3.Error, OSError) as exc:
                self._disable(exc)
        return self._conn

    def _disable(self, exc: Exception) -> None:
        logger.warning("embedding cache %s disabled: %s", self.path, exc)
        self._disabled = True
        self._conn = None

    def get_many(self, keys: Sequence[bytes], dimension: int) -> dict[bytes, Any]:
        """The cached vectors among ``keys`` (missing ones are absent from the result)."""
        import numpy as np

        found: dict[bytes, Any] = {}
        with self._lock:
            conn = self._connect()
            if conn is None:
                return found
            try:
                for start in range(0, len(keys), 500):
                    chunk = list(keys[start : start + 500])
                    marks = ",".join("?" * len(chunk))
                    rows = conn.execute(
                        f"SELECT key, vec FROM vectors WHERE key IN ({marks})", chunk
                    ).fetchall()
                    for key, blob in rows:
                        vec = np.frombuffer(blob, dtype=np.float32)
                        if vec.shape[0] == dimension:
                            found[bytes(key)] = vec
            except sqlite3.Error as exc:
                self._disable(exc)
        return found

    def put_many(self, items: Sequence[tuple[bytes, Any]]) -> None:
        import numpy as np

        with self._lock:
            conn = self._connect()
            if conn is None or not items:
                return
            rows = [(k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in items]
            try:
                with conn:
                    conn.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)", rows)
            except sqlite3.Error as exc:
                self._disable(exc)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class CachedEmbedder:
    """Embeds documents through memory -> disk -> model, computing only what is new.

    ``cache_dir=None`` uses :func:`default_cache_dir`; ``cache_dir=False`` keeps the cache
    in memory only.
    """

    def __init__(
        self,
        service: IEmbeddingService,
        cache_dir: str | Path | bool | None = None,
        *,
        memory_limit: int = 100_000,
        offload_min: int = 200,
    ) -> None:
        self.service = service
        self.model_id = service_cache_id(service)
        self.memory_limit = memory_limit
        self.offload_min = offload_min
        self._memory: dict[bytes, Any] = {}
        self.disk: EmbeddingCache | None = None
        if cache_dir is not False:
            try:
                directory = default_cache_dir() if cache_dir in (None, True) else cache_dir
                self.disk = EmbeddingCache(Path(directory), self.model_id)  # type: ignore[arg-type]
            except Exception as exc:  # settings or path errors must not break selection
                logger.warning("embedding disk cache unavailable: %s", exc)
        self.model_calls = 0
        self.embedded_texts = 0

    async def embed_documents(self, texts: Sequence[str]) -> Any:
        """A float32 array (len(texts), dim) of unit vectors. Above ``offload_min`` texts
        the hashing and stacking run in a worker thread (the loop keeps serving)."""
        import numpy as np

        dim = int(self.service.dimension or 0)
        if not texts:
            return np.zeros((0, dim), dtype=np.float32)
        offload = len(texts) > self.offload_min
        keys = await asyncio.to_thread(_keys, texts) if offload else _keys(texts)
        memory = self._memory
        resolved = {k: memory[k] for k in dict.fromkeys(keys) if k in memory}
        missing = [k for k in dict.fromkeys(keys) if k not in resolved]
        disk = self.disk
        if missing and disk is not None and dim:
            from_disk = await asyncio.to_thread(disk.get_many, missing, dim)
            resolved.update(from_disk)
            self._remember(from_disk)
            missing = [k for k in missing if k not in resolved]
        if missing:
            wanted = set(missing)
            todo: dict[bytes, str] = {}
            for key, text in zip(keys, texts, strict=True):
                if key in wanted and key not in todo:
                    todo[key] = text
            vectors = np.asarray(await self.service.embed_batch(list(todo.values())), np.float32)
            self.model_calls += 1
            self.embedded_texts += len(todo)
            fresh = dict(zip(todo.keys(), _normalise(vectors), strict=True))
            if disk is not None:
                await asyncio.to_thread(disk.put_many, list(fresh.items()))
            resolved.update(fresh)
            self._remember(fresh)
        if offload:
            return await asyncio.to_thread(_stack, resolved, keys)
        return _stack(resolved, keys)

    async def aclose(self) -> None:
        """Close the disk cache's SQLite connection (idempotent). A later call reopens
        it, so closing a shared embedder only releases the file until it is used."""
        disk = self.disk
        if disk is not None:
            await asyncio.to_thread(disk.close)

    def _remember(self, vectors: dict[bytes, Any]) -> None:
        if len(self._memory) + len(vectors) > self.memory_limit:
            self._memory.clear()
        self._memory.update(vectors)


def _keys(texts: Sequence[str]) -> list[bytes]:
    return [text_key(t) for t in texts]


def _stack(resolved: dict[bytes, Any], keys: Sequence[bytes]) -> Any:
    import numpy as np

    return np.stack([resolved[k] for k in keys]).astype(np.float32, copy=False)


def _normalise(vectors: Any) -> Any:
    import numpy as np

    if vectors.ndim == 1:
        vectors = vectors[None, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
