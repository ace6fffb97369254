"""Per-catalogue indexes, built once and found again in microseconds.

Selection runs on every chat turn, usually over the same tool list. Recognising that
list must not cost more than ranking it, so lookups go:

1. identity: a cached list that equals the given one element by element. ``list ==``
   compares identical objects by address, so this is ~6 us for 10,000 tools;
2. content: a hash of every tool's indexed text (name, description, parameters...),
   computed only on a miss, so an equal catalogue of fresh ``Tool`` objects (a restart,
   another coordinator, an MCP re-list) reuses the built indexes.

Indexes are built lazily: BM25 on first keyword use, embeddings on first semantic use.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from victor.selection.text import keyword_document

if TYPE_CHECKING:
    from victor.protocols import Tool
    from victor.selection.bm25 import BM25Index
    from victor.selection.embeddings.cache import CachedEmbedder
    from victor.selection.semantic import SemanticIndex

__all__ = ["CatalogueIndex", "IndexCache", "catalogue_key"]


def catalogue_key(tools: Sequence[Tool]) -> str:
    """A content hash of everything selection reads from the tools, in order."""
    digest = hashlib.sha256()
    for tool in tools:
        fields = [
            tool.name,
            tool.description,
            tool.domain or "",
            " ".join(tool.tags),
            json.dumps(tool.parameters.get("properties") or {}, sort_keys=True, default=str),
        ]
        digest.update("\x1f".join(fields).encode("utf-8", "surrogatepass"))
        digest.update(b"\x1e")
    return digest.hexdigest()


class CatalogueIndex:
    """The indexes of one catalogue (identified by content)."""

    def __init__(self, key: str, tools: Sequence[Tool]) -> None:
        self.key = key
        self.size = len(tools)
        self._docs_source: list[Tool] | None = list(tools)
        self._keyword: BM25Index | None = None
        self._semantic: dict[tuple[str, float], SemanticIndex] = {}
        self._building: dict[tuple[str, float], tuple[Any, asyncio.Future[Any]]] = {}

    @property
    def has_keyword(self) -> bool:
        return self._keyword is not None

    def keyword(self, **bm25: Any) -> BM25Index:
        if self._keyword is None:
            from victor.selection.bm25 import BM25Index

            tools = self._docs_source or []
            self._keyword = BM25Index([keyword_document(t) for t in tools], **bm25)
        return self._keyword

    async def semantic(self, embedder: CachedEmbedder, name_weight: float) -> SemanticIndex:
        """The semantic index for this embedding model; concurrent first calls share
        one build (per event loop)."""
        from victor.selection.semantic import SemanticIndex

        slot = (embedder.model_id, float(name_weight))
        built = self._semantic.get(slot)
        if built is not None:
            return built
        loop = asyncio.get_running_loop()
        pending = self._building.get(slot)
        if pending is not None and pending[0] is loop:
            return await asyncio.shield(pending[1])
        future: asyncio.Future[Any] = loop.create_future()
        self._building[slot] = (loop, future)
        try:
            index = await SemanticIndex.build(
                self._docs_source or [], embedder, name_weight=name_weight
            )
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            self._building.pop(slot, None)
        self._semantic[slot] = index
        future.set_result(index)
        return index


class _Entry:
    __slots__ = ("index", "tools")

    def __init__(self, tools: list[Tool], index: CatalogueIndex) -> None:
        self.tools = tools
        self.index = index


class IndexCache:
    """LRU of catalogue indexes, keyed by tool-list identity then by content."""

    def __init__(self, max_catalogues: int = 16) -> None:
        self.max_catalogues = max_catalogues
        self._entries: list[_Entry] = []  # most recent first
        self._by_key: OrderedDict[str, CatalogueIndex] = OrderedDict()
        self.builds = 0

    def get(self, tools: Sequence[Tool]) -> CatalogueIndex:
        seq = tools if isinstance(tools, list) else list(tools)
        entries = self._entries
        n = len(seq)
        for pos, entry in enumerate(entries):
            if len(entry.tools) == n and entry.tools == seq:
                if pos:
                    entries.insert(0, entries.pop(pos))
                return entry.index
        key = catalogue_key(seq)
        index = self._by_key.get(key)
        if index is None:
            index = CatalogueIndex(key, seq)
            self.builds += 1
            self._by_key[key] = index
            while len(self._by_key) > self.max_catalogues:
                self._by_key.popitem(last=False)
        else:
            self._by_key.move_to_end(key)
        entries.insert(0, _Entry(list(seq), index))
        del entries[self.max_catalogues * 2 :]
        return index

    def clear(self) -> None:
        self._entries.clear()
        self._by_key.clear()
