"""Per-catalogue indexes, built once and found again in microseconds.

Selection runs on every chat turn, usually over the same tool list. Recognising that
list must not cost more than ranking it, so lookups go:

1. identity: a cached list that equals the given one element by element. ``list ==``
   compares identical objects by address, so this is ~6 us for 10,000 tools;
2. content: a hash of every tool's indexed text (name, description, parameters...),
   computed only on a miss, so an equal catalogue of fresh ``Tool`` objects (a restart,
   another coordinator, an MCP re-list) reuses the built indexes.

Indexes are built lazily: BM25 on first keyword use, embeddings on first semantic use.
Each build is a single-flight task owned by the index: concurrent first turns wait for
the same build (shielded, so a turn that is cancelled neither cancels the build nor
fails the others), and catalogues above :data:`OFFLOAD_MIN` tools are indexed in a
worker thread (a 2,000-tool BM25 build takes ~100 ms the event loop would not serve).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from victor.selection.text import keyword_document

if TYPE_CHECKING:
    from victor.protocols import Tool
    from victor.selection.bm25 import BM25Index
    from victor.selection.embeddings.cache import CachedEmbedder
    from victor.selection.semantic import SemanticIndex

__all__ = ["OFFLOAD_MIN", "CatalogueIndex", "IndexCache", "catalogue_key", "join_build"]

OFFLOAD_MIN = 200  # catalogues larger than this are indexed off the event loop

T = TypeVar("T")


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


async def join_build(task: asyncio.Future[T]) -> T:
    """Wait for a shared build without owning it: cancelling the waiter leaves the build
    running for the others. A build cancelled under a waiter that was not (the loop
    shutting down) becomes a ``RuntimeError``, which callers degrade on like any error."""
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if task.cancelled() and (current is None or not current.cancelling()):
            raise RuntimeError("tool index build was cancelled") from None
        raise


class CatalogueIndex:
    """The indexes of one catalogue (identified by content)."""

    def __init__(self, key: str, tools: Sequence[Tool]) -> None:
        self.key = key
        self.size = len(tools)
        self._docs_source: list[Tool] = list(tools)
        self._keyword: BM25Index | None = None
        self._semantic: dict[tuple[str, float], SemanticIndex] = {}
        self._tasks: dict[Hashable, asyncio.Task[Any]] = {}
        self._lock = threading.Lock()
        self.keyword_builds = 0

    @property
    def has_keyword(self) -> bool:
        return self._keyword is not None

    @property
    def built_keyword(self) -> BM25Index | None:
        """The BM25 index when it is built (the hot path checks this, no await)."""
        return self._keyword

    def build_keyword(self, **bm25: Any) -> BM25Index:
        """Build the BM25 index now, in the calling thread (once, whichever thread)."""
        with self._lock:
            if self._keyword is None:
                from victor.selection.bm25 import BM25Index

                self.keyword_builds += 1
                docs = [keyword_document(t) for t in self._docs_source]
                self._keyword = BM25Index(docs, **bm25)
            return self._keyword

    async def keyword(self, **bm25: Any) -> BM25Index:
        """The BM25 index; small catalogues are indexed inline (under a millisecond),
        larger ones in a worker thread, by one shared build."""
        if self._keyword is not None:
            return self._keyword
        if self.size <= OFFLOAD_MIN:
            return self.build_keyword(**bm25)
        return await self._single_flight(
            "keyword", lambda: asyncio.to_thread(self.build_keyword, **bm25)
        )

    async def semantic(self, embedder: CachedEmbedder, name_weight: float) -> SemanticIndex:
        """The semantic index for this embedding model, by one shared build."""
        slot = (embedder.model_id, float(name_weight))
        built = self._semantic.get(slot)
        if built is not None:
            return built

        async def build() -> SemanticIndex:
            from victor.selection.semantic import SemanticIndex

            index = await SemanticIndex.build(
                self._docs_source, embedder, name_weight=name_weight, offload_min=OFFLOAD_MIN
            )
            self._semantic[slot] = index
            return index

        return await self._single_flight(("semantic", slot), build)

    async def _single_flight(self, slot: Hashable, start: Callable[[], Awaitable[T]]) -> T:
        """Join the running build of ``slot`` on this loop, or start it as a task the
        index owns. A failed build is forgotten, so the next turn tries again."""
        loop = asyncio.get_running_loop()
        task = self._tasks.get(slot)
        if task is None or task.done() or task.get_loop() is not loop:

            async def run() -> T:
                return await start()

            task = loop.create_task(run(), name=f"victor-index-build:{slot}")
            self._tasks[slot] = task
            task.add_done_callback(lambda done: self._forget(slot, done))
        return await join_build(task)

    def _forget(self, slot: Hashable, task: asyncio.Task[Any]) -> None:
        if self._tasks.get(slot) is task:
            del self._tasks[slot]
        if not task.cancelled():
            task.exception()  # retrieved: the waiters re-raise it themselves

    def pending_builds(self) -> list[asyncio.Task[Any]]:
        return [t for t in self._tasks.values() if not t.done()]


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

    def pending_builds(self) -> list[asyncio.Task[Any]]:
        """Builds still running (``aclose`` cancels them)."""
        return [t for index in self._by_key.values() for t in index.pending_builds()]

    def clear(self) -> None:
        self._entries.clear()
        self._by_key.clear()
