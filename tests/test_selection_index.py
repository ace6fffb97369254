"""Catalogue index builds: one shared build per index, off the event loop when large,
and a turn that is cancelled never fails the turns waiting on the same build."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

import pytest

import victor.selection.bm25 as bm25_module
from victor.agent.coordinators.tool_selection_coordinator import ToolSelectionCoordinator
from victor.protocols import IEmbeddingService, Tool
from victor.selection.embeddings import default_embeddings
from victor.selection.index import OFFLOAD_MIN, join_build


def catalogue(size: int, topic: str = "weather") -> list[Tool]:
    return [
        Tool(name=f"tool_{i}", description=f"Tool number {i} about {topic} and item {i % 7}.")
        for i in range(size)
    ]


class SlowEmbeddings(IEmbeddingService):
    """The real model behind a gate: document batches wait until the test opens it."""

    model_name = "slow-minilm"
    dimension = 384
    cache_id = "slow-minilm-test"

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.batches: list[int] = []

    async def embed_batch(self, texts: Sequence[str]) -> Any:
        self.batches.append(len(texts))
        if len(texts) > 1:
            await self.gate.wait()
        return await default_embeddings().embed_batch(texts)


async def test_cancelled_first_turn_does_not_fail_the_others_on_a_semantic_build() -> None:
    service = SlowEmbeddings()
    coordinator = ToolSelectionCoordinator(embeddings=service, cache_dir=False, max_tools=2)
    tools = catalogue(6)
    first = asyncio.create_task(coordinator._semantic_selection("rain tomorrow?", tools))
    await asyncio.sleep(0.05)
    others = [
        asyncio.create_task(coordinator._semantic_selection("is it sunny?", tools))
        for _ in range(3)
    ]
    await asyncio.sleep(0.05)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    service.gate.set()
    results = await asyncio.gather(*others)
    assert all(len(r) == 2 for r in results)
    assert service.batches.count(2 * len(tools)) == 1  # one build, not cancelled


async def test_concurrent_first_turns_share_one_bm25_build_off_the_loop(monkeypatch) -> None:
    threads: list[int] = []

    class Recording(bm25_module.BM25Index):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            threads.append(threading.get_ident())
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(bm25_module, "BM25Index", Recording)
    coordinator = ToolSelectionCoordinator(max_tools=3, cache_dir=False)
    tools = catalogue(OFFLOAD_MIN * 5)
    turns = [
        asyncio.create_task(coordinator._keyword_selection(f"weather item {i}", tools))
        for i in range(8)
    ]
    await asyncio.sleep(0)
    turns[0].cancel()  # the turn that started the build goes away
    results = await asyncio.gather(*turns[1:])
    assert all(len(r) == 3 for r in results)
    assert len(threads) == 1 and threads[0] != threading.get_ident()
    assert coordinator._indexes.get(tools).keyword_builds == 1

    small = catalogue(OFFLOAD_MIN, topic="mail")
    await coordinator._keyword_selection("mail", small)
    assert len(threads) == 2 and threads[1] == threading.get_ident()  # inline: too small


async def test_failed_build_is_retried_by_the_next_turn() -> None:
    class FlakyEmbeddings(SlowEmbeddings):
        async def embed_batch(self, texts: Sequence[str]) -> Any:
            self.batches.append(len(texts))
            if len(self.batches) == 1:
                raise ConnectionError("embedding API unreachable")
            return await default_embeddings().embed_batch(texts)

    service = FlakyEmbeddings()
    coordinator = ToolSelectionCoordinator(embeddings=service, cache_dir=False, max_tools=1)
    tools = catalogue(4)
    with pytest.raises(ConnectionError):
        await coordinator._semantic_selection("weather", tools)
    assert len(await coordinator._semantic_selection("weather", tools)) == 1


async def test_a_build_cancelled_under_its_waiters_becomes_an_error() -> None:
    build = asyncio.create_task(asyncio.sleep(10))
    waiter = asyncio.create_task(join_build(build))
    await asyncio.sleep(0)
    build.cancel()  # as when the loop shuts down: waiters degrade, they are not cancelled
    with pytest.raises(RuntimeError, match="cancelled"):
        await waiter
