"""The default embedding model: all-MiniLM-L6-v2, int8 ONNX, run by onnxruntime.

The model file ships inside the package (``victor/selection/models/all-MiniLM-L6-v2``),
so no network and no torch are needed at run time. Outputs match sentence-transformers'
``encode(..., normalize_embeddings=True)``: same WordPiece tokenizer, truncation at 256
tokens, mean pooling over the attention mask, L2 normalisation (cosine to the fp32
reference >= 0.98, mean 0.993; see ``scripts/convert_minilm.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from victor.protocols import IEmbeddingService

__all__ = ["MODEL_DIR", "OnnxEmbeddings"]

MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "all-MiniLM-L6-v2"

# Texts embedded inline on the event loop; larger batches go to a worker thread.
_INLINE_MAX = 4


def _files_signature(directory: Path, names: Sequence[str]) -> str:
    """A short digest of the files' sizes and modification times (``missing`` for a
    file that is not there: loading will report it)."""
    parts = []
    for name in names:
        try:
            stat = (directory / name).stat()
            parts.append(f"{name}:{stat.st_size}:{stat.st_mtime_ns}")
        except OSError:
            parts.append(f"{name}:missing")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


class OnnxEmbeddings(IEmbeddingService):
    """Sentence embeddings from an ONNX BERT encoder plus a ``tokenizer.json``.

    One inference session with a single intra-op thread serves every call: a short query
    then runs in ~2 ms without thread hand-offs, and a catalogue is tokenised in one call
    and split into slices run in parallel on ``threads`` worker threads (onnxruntime
    releases the GIL).

    ``batch_size`` defaults to 1 on purpose: the int8 model quantises activations per
    call, so padding and batch neighbours shift a text's vector (cosine down to 0.98).
    One text per run makes every vector deterministic, identical for a query and a
    cached document; batches of texts of one length would be ~20% faster.
    """

    model_name = "sentence-transformers/all-MiniLM-L6-v2"
    dimension = 384

    def __init__(
        self,
        model_dir: str | Path | None = None,
        *,
        model_file: str = "model_int8.onnx",
        max_length: int = 256,
        batch_size: int = 1,
        threads: int | None = None,
    ) -> None:
        self.model_dir = Path(model_dir) if model_dir is not None else MODEL_DIR
        self.model_file = model_file
        self.max_length = max_length
        self.batch_size = batch_size
        self.threads = threads or max(1, min(4, os.cpu_count() or 1))
        # Cached vectors are only valid for these exact files: the id names their size and
        # modification time, so a re-quantised model, or another model in a folder of the
        # same name, gets its own cache instead of stale vectors.
        self.cache_id = (
            f"onnx:{self.model_dir.name}:{model_file}:{max_length}:"
            f"{_files_signature(self.model_dir, [model_file, 'tokenizer.json'])}"
        )
        self._session: Any = None
        self._tokenizer: Any = None
        self._inputs: set[str] = set()
        self._lock = threading.Lock()

    def _load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            try:
                import onnxruntime as ort
                from tokenizers import Tokenizer
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise ImportError(
                    "semantic tool selection needs onnxruntime and tokenizers: "
                    "pip install 'victor-orchestrator[embeddings]'"
                ) from exc
            tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
            tokenizer.no_padding()  # the file pads to a fixed 128; we pad per batch
            tokenizer.enable_truncation(self.max_length)
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.log_severity_level = 3
            session = ort.InferenceSession(
                str(self.model_dir / self.model_file), options, providers=["CPUExecutionProvider"]
            )
            self._inputs = {i.name for i in session.get_inputs()}
            self._tokenizer = tokenizer
            # Last: other threads take a set ``_session`` to mean "ready" without the lock.
            self._session = session

    def _tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text (truncated). One text: plain ``encode``, no hand-off to
        the tokenizer's thread pool; many: one ``encode_batch`` call, which runs in
        parallel outside the GIL."""
        if len(texts) == 1:
            return [self._tokenizer.encode(texts[0]).ids]
        return [e.ids for e in self._tokenizer.encode_batch(list(texts))]

    def _run(self, rows: Sequence[Sequence[int]]) -> Any:
        """Unit sentence vectors of tokenised texts, in one model run (padded to the
        longest; mean pooling over the attention mask)."""
        import numpy as np

        width = max(len(r) for r in rows)
        ids = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, tokens in enumerate(rows):
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        (hidden,) = self._session.run(None, feeds)
        if len(rows) == 1:  # no padding: the plain mean over the tokens
            pooled = hidden.mean(axis=1)
        else:
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)

    def _run_slice(self, rows: Sequence[Sequence[int]]) -> Any:
        """Vectors of ``rows``, ``batch_size`` texts per model run."""
        import numpy as np

        size = max(1, self.batch_size)
        return np.concatenate([self._run(rows[i : i + size]) for i in range(0, len(rows), size)])

    def encode(self, texts: Sequence[str]) -> Any:
        """Embed ``texts`` synchronously; returns a float32 array (len(texts), 384)."""
        import numpy as np

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self._session is None:
            self._load()
        if len(texts) == 1:
            return self._run(self._tokenize(texts))
        tokens = self._tokenize(texts)
        # Sort by length (batches pad little), cut into a few slices per worker thread
        # (onnxruntime releases the GIL), restore the order.
        order = sorted(range(len(texts)), key=lambda i: len(tokens[i]))
        workers = max(1, self.threads)
        step = max(1, self.batch_size) * max(1, -(-len(order) // (workers * 32 * self.batch_size)))
        slices = [order[i : i + step] for i in range(0, len(order), step)]
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        if len(slices) == 1 or workers == 1:
            for idx in slices:
                out[idx] = self._run_slice([tokens[i] for i in idx])
            return out
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = pool.map(lambda idx: self._run_slice([tokens[i] for i in idx]), slices)
            for idx, vectors in zip(slices, results, strict=True):
                out[idx] = vectors
        return out

    async def embed_batch(self, texts: Sequence[str]) -> Any:
        """Short inputs (a query) run inline; catalogues run in a worker thread so the
        event loop keeps serving other sessions meanwhile."""
        if len(texts) <= _INLINE_MAX and self._session is not None:
            return self.encode(texts)
        return await asyncio.to_thread(self.encode, list(texts))
