"""Measured tool selection: which of many tools to offer the model each turn.

Keyword (BM25), semantic (sentence embeddings, a local int8 ONNX model by default) and
hybrid rankings, the strategies built on them, and retrieval metrics. The coordinator
that runs them each turn is
:class:`victor.agent.coordinators.tool_selection_coordinator.ToolSelectionCoordinator`.
Heavy dependencies (numpy, bm25s, onnxruntime) load on first use, not on import.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BM25Index",
    "CostAwareStrategy",
    "DomainStrategy",
    "EmbeddingDomainClassifier",
    "HybridStrategy",
    "KeywordStrategy",
    "SemanticStrategy",
    "Tokenizer",
    "ndcg_at_k",
    "recall_at_k",
    "split_identifier",
]

_LAZY = {
    "BM25Index": "victor.selection.bm25",
    "CostAwareStrategy": "victor.selection.strategies",
    "DomainStrategy": "victor.selection.strategies",
    "EmbeddingDomainClassifier": "victor.selection.strategies",
    "HybridStrategy": "victor.selection.strategies",
    "KeywordStrategy": "victor.selection.strategies",
    "SemanticStrategy": "victor.selection.strategies",
    "Tokenizer": "victor.selection.text",
    "ndcg_at_k": "victor.selection.metrics",
    "recall_at_k": "victor.selection.metrics",
    "split_identifier": "victor.selection.text",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
