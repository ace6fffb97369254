"""Chooses which tools the model is offered each turn.

Built-in rankings (all best first, capped at ``k``):

- ``keyword``: BM25 over tool names (camelCase/snake_case split), descriptions and
  parameters, stemmed; ~0.1 ms for 10,000 tools.
- ``semantic``: cosine of sentence embeddings (all-MiniLM-L6-v2 int8 ONNX by default,
  shipped in the package); ~2-4 ms a query, tool vectors cached on disk.
- ``hybrid`` (the default): blend of both signals, each standardised over the
  catalogue for the query (z-scores), ``hybrid_alpha`` weighting the semantic side,
  less so the more of the query's words the catalogue knows
  (``victor.selection.hybrid``); chosen leaving one of three public data sets out.
- ``all``: every tool, unranked.

Indexes are built once per catalogue and found again by identity (microseconds) or by
content hash. ``Tool`` objects are treated as immutable: to change a tool, build a new one.

A strategy may declare a hard filter, an optional method ``allowed(self, tool) -> bool``
(``CostAwareStrategy`` has one). The coordinator then offers only tools it allows: it
drops others from the strategy's answer, and when the strategy raises or returns nothing
the built-in fallback ranks the allowed tools only (none allowed: nothing is offered).
A filter that raises fails closed (nothing offered, ``error`` says why). Pinned tools
pass through the filter too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from victor.protocols import IToolSelectionCoordinator, IToolSelectionStrategy, Message, Tool
from victor.selection.hybrid import DEFAULT_ALPHA
from victor.selection.index import IndexCache
from victor.selection.result import ToolSelection
from victor.selection.semantic import DEFAULT_NAME_WEIGHT
from victor.selection.turns import config_value, previous_user_turns, with_pinned

if TYPE_CHECKING:
    from victor.protocols import IEmbeddingService
    from victor.selection.bm25 import BM25Index
    from victor.selection.embeddings.cache import CachedEmbedder
    from victor.selection.semantic import QueryEncoder

logger = logging.getLogger(__name__)

__all__ = [
    "BUILTIN_STRATEGIES",
    "IToolSelectionCoordinator",
    "ToolSelection",
    "ToolSelectionCoordinator",
]

BUILTIN_STRATEGIES = ("keyword", "semantic", "hybrid", "all")


class _Outcome(NamedTuple):
    """One selection: the tools, the ranking used, whether it fell back and why, and
    the pool pinned tools may come from (the strategy's allowed tools)."""

    tools: list[Tool]
    used: str
    fallback: bool
    error: str | None
    pool: list[Tool]


@dataclass(slots=True)
class _Turn:
    """Per-turn settings seen by the built-in rankings, also when a custom strategy
    calls them (a ContextVar, so concurrent sessions never see each other's)."""

    max_tools: int
    alpha: float
    query: str = ""
    ranking_query: str = ""
    notes: list[str] = field(default_factory=list)


_TURN: ContextVar[_Turn | None] = ContextVar("victor_tool_selection_turn", default=None)
_IN_CUSTOM: ContextVar[bool] = ContextVar("victor_tool_selection_in_custom", default=False)


class ToolSelectionCoordinator(IToolSelectionCoordinator):
    """Runs the session's selection strategy over the registered tools.

    With no more tools than ``max_tools`` and a built-in chosen (or nothing configured),
    every tool is offered, pinned ones first (a few microseconds: no model is loaded to
    reorder tools that are all offered anyway). Otherwise the session's
    ``tool_selection.strategy`` (a built-in name or one registered with
    :meth:`register_strategy`), else ``default_strategy``, else the built-in
    ``default_builtin`` ranks them. A custom strategy that raises or returns nothing
    falls back to ``default_builtin`` (within its ``allowed`` filter, if it declares
    one): logged, ``fallback=True``. :meth:`aclose` releases what selection holds open.

    ``embeddings`` is any :class:`IEmbeddingService` (default: the shipped MiniLM);
    ``cache_dir`` holds its document vectors (default ``Settings().data_dir /
    "embeddings"``, ``False`` for memory only). Short follow-up queries ("and in
    Paris?") are ranked together with up to ``context_turns`` previous user messages.
    """

    def __init__(
        self,
        default_strategy: IToolSelectionStrategy | None = None,
        *,
        max_tools: int = 20,
        default_builtin: str = "hybrid",
        hybrid_alpha: float = DEFAULT_ALPHA,
        embeddings: IEmbeddingService | None = None,
        cache_dir: str | Path | bool | None = None,
        strategies: Mapping[str, IToolSelectionStrategy] | None = None,
        name_weight: float = DEFAULT_NAME_WEIGHT,
        context_turns: int = 2,
        short_query_words: int = 6,
        strategy_timeout: float | None = None,
        bm25_params: Mapping[str, Any] | None = None,
    ) -> None:
        if default_builtin not in BUILTIN_STRATEGIES:
            raise ValueError(f"default_builtin must be one of {BUILTIN_STRATEGIES}")
        self.default_strategy = default_strategy
        self.max_tools = max_tools
        self.default_builtin = default_builtin
        self.hybrid_alpha = hybrid_alpha
        self.name_weight = name_weight
        self.context_turns = context_turns
        self.short_query_words = short_query_words
        self.strategy_timeout = strategy_timeout
        self.bm25_params = dict(bm25_params or {})
        self.strategies: dict[str, IToolSelectionStrategy] = dict(strategies or {})
        self._embeddings = embeddings
        self._cache_dir = cache_dir
        self._embedder: CachedEmbedder | None = None
        self._queries: QueryEncoder | None = None
        self._indexes = IndexCache()
        self._warned: set[str] = set()

    # -- configuration -------------------------------------------------------------

    def register_strategy(self, name: str, strategy: IToolSelectionStrategy) -> None:
        """Make ``strategy`` selectable per session as ``tool_selection.strategy: name``."""
        if name in BUILTIN_STRATEGIES:
            raise ValueError(f"{name!r} is a built-in strategy name")
        self.strategies[name] = strategy

    @property
    def embeddings(self) -> IEmbeddingService:
        if self._embeddings is None:
            from victor.selection.embeddings import default_embeddings

            self._embeddings = default_embeddings()
        return self._embeddings

    def _semantic_parts(self) -> tuple[CachedEmbedder, QueryEncoder]:
        if self._embedder is None or self._queries is None:
            from victor.selection.embeddings.cache import CachedEmbedder
            from victor.selection.semantic import QueryEncoder

            self._embedder = CachedEmbedder(self.embeddings, self._cache_dir)
            self._queries = QueryEncoder(self.embeddings)
        return self._embedder, self._queries

    async def warm_up(self, tools: Sequence[Tool], *, semantic: bool = True) -> None:
        """Build the indexes of ``tools`` now rather than on the first turn."""
        index = self._indexes.get(tools)
        await index.keyword(**self.bm25_params)
        if semantic:
            embedder, _ = self._semantic_parts()
            await index.semantic(embedder, self.name_weight)

    async def aclose(self) -> None:
        """Release what selection holds open: index builds still running, the embedding
        cache's SQLite file and, when semantic ranking used it, the embedding service's
        client (services with an ``aclose``; the shipped ONNX model holds nothing to
        close). Idempotent; a later turn reopens what it needs."""
        loop = asyncio.get_running_loop()
        pending = [t for t in self._indexes.pending_builds() if t.get_loop() is loop]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        embedder, self._embedder, self._queries = self._embedder, None, None
        if embedder is None:
            return  # nothing semantic was used since the last close
        closers = [embedder.aclose]
        close_service = getattr(embedder.service, "aclose", None)
        if callable(close_service):
            closers.append(close_service)
        for close in closers:
            try:
                await close()
            except Exception:
                logger.exception("error while closing tool selection (%r)", close)

    # -- the built-in rankings -----------------------------------------------------

    def _k(self, k: int | None) -> int:
        if k is not None:
            return max(0, int(k))
        turn = _TURN.get()
        return turn.max_tools if turn is not None else self.max_tools

    def _ranking_query(self, query: str) -> str:
        turn = _TURN.get()
        if turn is not None and query == turn.query:
            return turn.ranking_query
        return query

    def _pick(self, tools: Sequence[Tool], scores: Any, k: int) -> list[Tool]:
        from victor.selection.hybrid import top_k

        return [tools[i] for i in top_k(scores, k)]

    async def _keyword_index(self, tools: Sequence[Tool]) -> BM25Index:
        index = self._indexes.get(tools)
        return index.built_keyword or await index.keyword(**self.bm25_params)

    async def _keyword_scores(self, query: str, tools: Sequence[Tool]) -> Any:
        return (await self._keyword_index(tools)).scores(self._ranking_query(query))

    async def _semantic_scores(self, query: str, tools: Sequence[Tool]) -> Any:
        embedder, queries = self._semantic_parts()
        index = await self._indexes.get(tools).semantic(embedder, self.name_weight)
        vector = await queries.encode(self._ranking_query(query))
        return index.scores(vector)

    async def _keyword_selection(
        self, query: str, tools: Sequence[Tool], k: int | None = None
    ) -> list[Tool]:
        """BM25 ranking of ``tools`` for ``query``."""
        if not tools:
            return []
        return self._pick(tools, await self._keyword_scores(query, tools), self._k(k))

    async def _semantic_selection(
        self, query: str, tools: Sequence[Tool], k: int | None = None
    ) -> list[Tool]:
        """Embedding-cosine ranking of ``tools`` for ``query``."""
        if not tools:
            return []
        return self._pick(tools, await self._semantic_scores(query, tools), self._k(k))

    async def _hybrid_selection(
        self, query: str, tools: Sequence[Tool], k: int | None = None
    ) -> list[Tool]:
        """Blend of both; degrades to keyword (logged) when embeddings are unavailable."""
        return (await self._hybrid_ranked(query, tools, k))[0]

    async def _hybrid_ranked(
        self, query: str, tools: Sequence[Tool], k: int | None = None
    ) -> tuple[list[Tool], str]:
        """The hybrid ranking and what produced it (``keyword`` when it degraded)."""
        if not tools:
            return [], "hybrid"
        from victor.selection.hybrid import blend, query_alpha

        bm25 = await self._keyword_index(tools)
        text = self._ranking_query(query)
        keyword, coverage = bm25.scores_and_coverage(text)
        try:
            semantic = await self._semantic_scores(query, tools)
        except Exception as exc:
            self._degraded("semantic scoring failed, using keyword only", exc)
            return self._pick(tools, keyword, self._k(k)), "keyword"
        turn = _TURN.get()
        alpha = query_alpha(turn.alpha if turn is not None else self.hybrid_alpha, coverage)
        return self._pick(tools, blend(semantic, keyword, alpha), self._k(k)), "hybrid"

    async def select_tools(
        self,
        query: str,
        tools: Sequence[Tool],
        k: int | None = None,
        strategy: str | None = None,
    ) -> list[Tool]:
        """Rank ``tools`` with ``strategy`` (a built-in or registered name; None: the
        default), best first. A failing custom strategy falls back to the built-in."""
        return (await self._run(query, list(tools), self._k(k), strategy)).tools

    # -- one turn ------------------------------------------------------------------

    async def select_for_turn(
        self,
        query: str,
        tools: Sequence[Tool],
        *,
        config: dict[str, Any] | None = None,
        history: Sequence[Message] = (),
    ) -> ToolSelection:
        """Select the tools for one turn of the agent loop."""
        start = time.perf_counter()
        cfg = (config or {}).get("tool_selection") or {}
        if not cfg and self.default_strategy is None and len(tools) <= self.max_tools:
            # The per-turn hot path (nothing configured, every tool fits): ~1.5 us.
            max_tools, alpha = self.max_tools, self.hybrid_alpha
            details = {"max_tools": max_tools, "used": "all", "hybrid_alpha": alpha}
            elapsed = (time.perf_counter() - start) * 1000
            return ToolSelection(
                list(tools),
                "all",
                len(tools),
                elapsed,
                False,
                None,
                details,
                "all",
                max_tools,
                alpha,
            )
        name = cfg.get("strategy") if isinstance(cfg, Mapping) else None
        if name is not None:
            name = None if name == "default" else str(name)
        max_tools, problem = config_value(cfg, "max_tools", self.max_tools, int)
        alpha, problem_alpha = config_value(cfg, "hybrid_alpha", self.hybrid_alpha, float)
        for message in (problem, problem_alpha):
            if message:
                self._warn_once(message)
        pinned = [str(p) for p in (cfg.get("pinned") or ())] if isinstance(cfg, Mapping) else []
        builtin = name in BUILTIN_STRATEGIES or (name is None and self.default_strategy is None)
        if not tools or (builtin and len(tools) <= max_tools):
            # Every tool fits and a built-in would only reorder them: offer them all.
            chosen = list(tools)
            if pinned:
                chosen = with_pinned(chosen, chosen, pinned, max_tools, everything=True)
            details = {"max_tools": max_tools, "used": "all", "hybrid_alpha": alpha}
            if pinned:
                details["pinned"] = pinned
            return ToolSelection(
                tools=chosen,
                strategy=name or "all",
                candidates=len(tools),
                latency_ms=(time.perf_counter() - start) * 1000,
                details=details,
                used="all",
                max_tools=max_tools,
                hybrid_alpha=alpha,
            )
        previous = previous_user_turns(
            query, history, turns=self.context_turns, short_query_words=self.short_query_words
        )
        ranking_query = " ".join([*previous, query]) if previous else query
        turn = _Turn(max_tools, alpha, query, ranking_query)
        token = _TURN.set(turn)
        try:
            outcome = await self._run(query, list(tools), max_tools, name)
        finally:
            _TURN.reset(token)
        chosen, used, fallback, error = outcome.tools, outcome.used, outcome.fallback, outcome.error
        if pinned:
            chosen = with_pinned(chosen, outcome.pool, pinned, max_tools, everything=used == "all")
        details: dict[str, Any] = {"max_tools": max_tools, "used": used, "hybrid_alpha": alpha}
        if previous:
            details["context_turns"] = len(previous)
        if pinned:
            details["pinned"] = pinned
        if turn.notes:
            fallback = True
            error = error or turn.notes[-1]
            details["notes"] = list(turn.notes)
        label = name or (
            self._strategy_label(self.default_strategy)
            if self.default_strategy
            else self.default_builtin
        )
        return ToolSelection(
            tools=chosen,
            strategy=str(label),
            candidates=len(tools),
            latency_ms=(time.perf_counter() - start) * 1000,
            fallback=fallback,
            error=error,
            details=details,
            used=used,
            max_tools=max_tools,
            hybrid_alpha=alpha,
        )

    async def _run(self, query: str, tools: list[Tool], k: int, name: str | None) -> _Outcome:
        """One selection by the named (else the default) strategy, with its fallbacks."""
        custom: IToolSelectionStrategy | None = None
        builtin = None
        if name is not None and name != "default":
            name = str(name)
            if name in BUILTIN_STRATEGIES:
                builtin = name
            elif name in self.strategies:
                custom = self.strategies[name]
            else:
                self._warn_once(f"unknown tool selection strategy {name!r}; using the default")
        if builtin is None and custom is None and not _IN_CUSTOM.get():
            custom = self.default_strategy
        if custom is None:
            ranked, used = await self._run_builtin(builtin or self.default_builtin, query, tools, k)
            return _Outcome(ranked, used, False, None, tools)
        return await self._run_strategy(custom, query, tools, k)

    async def _run_strategy(
        self, custom: IToolSelectionStrategy, query: str, tools: list[Tool], k: int
    ) -> _Outcome:
        """A custom strategy, its hard filter enforced; falls back to the built-in (over
        the allowed tools) when it raises or returns nothing."""
        label = self._strategy_label(custom)
        allowed = getattr(custom, "allowed", None)
        allowed = allowed if callable(allowed) else None
        try:
            pool = [t for t in tools if allowed(t)] if allowed else tools
        except Exception as exc:
            message = f"{label}.allowed() failed, offering no tool: {type(exc).__name__}: {exc}"
            logger.warning(message)
            return _Outcome([], "none", True, message, [])
        error: str | None
        try:
            chosen = await self._run_custom(custom, query, tools)
            if allowed:
                chosen = [t for t in chosen if allowed(t)]
        except Exception as exc:
            logger.warning(
                "tool selection strategy %s failed, using %s: %r", label, self.default_builtin, exc
            )
            error = f"{type(exc).__name__}: {exc}"
        else:
            if chosen:
                return _Outcome(chosen[:k], "custom", False, None, pool)
            logger.warning(
                "tool selection strategy %s chose no tool, using %s", label, self.default_builtin
            )
            error = "strategy returned no tools"
        if not pool:
            return _Outcome([], "none", True, f"{error}; its allowed() filter allows no tool", [])
        ranked, used = await self._run_builtin(self.default_builtin, query, pool, k)
        return _Outcome(ranked, used, True, error, pool)

    async def _run_custom(
        self, strategy: IToolSelectionStrategy, query: str, tools: list[Tool]
    ) -> list[Tool]:
        token = _IN_CUSTOM.set(True)
        try:
            call = strategy.select_tools(query, list(tools), self)
            result = await (
                asyncio.wait_for(call, self.strategy_timeout) if self.strategy_timeout else call
            )
        finally:
            _IN_CUSTOM.reset(token)
        if result is None:
            return []
        chosen: dict[str, Tool] = {}
        for item in result:
            if not isinstance(item, Tool):
                raise TypeError(f"strategy returned {type(item).__name__}, not Tool")
            chosen.setdefault(item.name, item)
        return list(chosen.values())

    async def _run_builtin(
        self, name: str, query: str, tools: list[Tool], k: int
    ) -> tuple[list[Tool], str]:
        """A built-in ranking, stepping down to keyword, then catalogue order, on error."""
        if name == "all":
            return list(tools), "all"
        try:
            if name == "hybrid":
                return await self._hybrid_ranked(query, tools, k)
            rank = self._keyword_selection if name == "keyword" else self._semantic_selection
            return await rank(query, tools, k), name
        except Exception as exc:
            self._degraded(f"{name} selection failed", exc)
        if name != "keyword":
            try:
                return await self._keyword_selection(query, tools, k), "keyword"
            except Exception as exc:
                self._degraded("keyword selection failed", exc)
        return list(tools)[:k], "all"

    # -- helpers -------------------------------------------------------------------

    def _degraded(self, what: str, exc: BaseException) -> None:
        message = f"{what}: {type(exc).__name__}: {exc}"
        turn = _TURN.get()
        if turn is not None:
            turn.notes.append(message)
        self._warn_once(message)

    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            logger.warning(message)
        else:
            logger.debug(message)

    @staticmethod
    def _strategy_label(strategy: IToolSelectionStrategy | None) -> str:
        return type(strategy).__name__ if strategy is not None else "none"
