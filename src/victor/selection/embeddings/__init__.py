"""Embedding services for semantic tool selection.

``OnnxEmbeddings`` is the default: all-MiniLM-L6-v2 quantised to int8, shipped inside the
package and run by onnxruntime, so it works offline right after ``pip install``. The
adapters for sentence-transformers and the OpenAI API are optional and import their SDK
only when built. ``EmbeddingCache`` keeps document vectors on disk by content hash.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from victor.selection.embeddings.cache import CachedEmbedder, EmbeddingCache
    from victor.selection.embeddings.onnx import OnnxEmbeddings
    from victor.selection.embeddings.openai import OpenAIEmbeddings
    from victor.selection.embeddings.sentence_transformers import SentenceTransformerEmbeddings

__all__ = [
    "CachedEmbedder",
    "EmbeddingCache",
    "OnnxEmbeddings",
    "OpenAIEmbeddings",
    "SentenceTransformerEmbeddings",
    "default_embeddings",
]

_LAZY = {
    "CachedEmbedder": "victor.selection.embeddings.cache",
    "EmbeddingCache": "victor.selection.embeddings.cache",
    "OnnxEmbeddings": "victor.selection.embeddings.onnx",
    "OpenAIEmbeddings": "victor.selection.embeddings.openai",
    "SentenceTransformerEmbeddings": "victor.selection.embeddings.sentence_transformers",
}

_default: Any = None


def default_embeddings() -> OnnxEmbeddings:
    """The process-wide default model (one ONNX session shared by every coordinator)."""
    global _default
    if _default is None:
        from victor.selection.embeddings.onnx import OnnxEmbeddings

        _default = OnnxEmbeddings()
    return _default


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
