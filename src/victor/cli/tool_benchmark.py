"""The tool-selection benchmark behind ``victor bench tools`` and
``benchmarks/tool_selection.py``: quality on public data (MetaTool, LiveMCPBench,
Gorilla APIBench) or on a user's own catalogue, latency at 500 and 10,000 tools.

Every number goes through the public path, ``ToolSelectionCoordinator.select_tools(query,
tools, k=10, strategy=...)``, one query at a time, with the catalogue's indexes built
beforehand (as after the first turn). Quality: Recall@1/5/10 and NDCG@10 against the
gold tools. MetaTool results are on the held-out half of its queries only. How the
default was chosen (leaving one data set out) is in scripts/selection_experiments.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from victor.agent.coordinators.tool_selection_coordinator import ToolSelectionCoordinator
from victor.protocols import IEmbeddingService
from victor.selection.datasets import (
    Dataset,
    load_gorilla,
    load_livemcpbench,
    load_metatool,
    synthetic_catalogue,
)
from victor.selection.hybrid import DEFAULT_ALPHA
from victor.selection.metrics import ndcg_at_k, recall_at_k

__all__ = ["REFERENCE", "Row", "compare_on_catalogue", "run_benchmark"]

STRATEGIES = ("keyword", "semantic", "hybrid")
# Reference figures of the data README (MetaTool, 2,000 sampled queries): R@5, NDCG@10.
REFERENCE = {"keyword": (0.583, 0.511), "semantic": (0.749, 0.667), "hybrid": (0.778, 0.695)}


@dataclass(slots=True)
class Row:
    dataset: str
    strategy: str
    tools: int
    queries: int
    r1: float = 0.0
    r5: float = 0.0
    r10: float = 0.0
    ndcg10: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    build_s: float = 0.0  # index build from scratch (no embedding cache), latency rows


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


async def evaluate(
    dataset: Dataset,
    strategy: str,
    embeddings: IEmbeddingService,
    cache_dir: Any,
    *,
    alpha: float = DEFAULT_ALPHA,
    label: str | None = None,
) -> Row:
    """Quality and latency of one built-in strategy on one data set (each query ranked
    among its own catalogue's tools when the data set has several)."""
    coordinator = ToolSelectionCoordinator(
        embeddings=embeddings, cache_dir=cache_dir, hybrid_alpha=alpha
    )
    row = Row(dataset.name, label or strategy, len(dataset.tools), len(dataset.queries))
    times: list[float] = []
    sums = [0.0, 0.0, 0.0, 0.0]
    for part in dataset.catalogues():
        tools = part.tools
        await coordinator.warm_up(tools, semantic=strategy != "keyword")
        await coordinator.select_tools("warm up", tools, k=10, strategy=strategy)
        for query in part.queries:
            start = time.perf_counter()
            chosen = await coordinator.select_tools(query.text, tools, k=10, strategy=strategy)
            times.append((time.perf_counter() - start) * 1000)
            names = [t.name for t in chosen]
            sums[0] += recall_at_k(names, query.gold, 1)
            sums[1] += recall_at_k(names, query.gold, 5)
            sums[2] += recall_at_k(names, query.gold, 10)
            sums[3] += ndcg_at_k(names, query.gold, 10)
    n = max(1, len(dataset.queries))
    row.r1, row.r5, row.r10, row.ndcg10 = (s / n for s in sums)
    row.p50_ms, row.p95_ms = statistics.median(times or [0.0]), _pct(times, 0.95)
    return row


ALPHAS = (0.5, 0.6, 0.7, 0.8, 0.9)


async def compare_on_catalogue(
    dataset: Dataset,
    *,
    alphas: Sequence[float] = ALPHAS,
    cache_dir: Any = None,
    echo: Any = print,
) -> list[Row]:
    """Every built-in strategy on a user's catalogue and labelled queries, the hybrid at
    several ``hybrid_alpha``; prints the table and which setting to pick."""
    from victor.selection.embeddings import default_embeddings

    embeddings = default_embeddings()
    rows = [await evaluate(dataset, s, embeddings, cache_dir) for s in ("keyword", "semantic")]
    for alpha in dict.fromkeys([DEFAULT_ALPHA, *alphas]):
        label = f"hybrid alpha {alpha:g}" + (" (default)" if alpha == DEFAULT_ALPHA else "")
        rows.append(
            await evaluate(dataset, "hybrid", embeddings, cache_dir, alpha=alpha, label=label)
        )
    echo(format_table(rows))
    best = max(rows, key=lambda r: (r.r5 + r.ndcg10) / 2)
    if best.strategy.startswith("hybrid"):
        alpha = float(best.strategy.split()[2])
        config = f'{{"tool_selection": {{"strategy": "hybrid", "hybrid_alpha": {alpha:g}}}}}'
    else:
        config = f'{{"tool_selection": {{"strategy": "{best.strategy}"}}}}'
    echo(
        f"best on this catalogue (mean of R@5 and NDCG@10): {best.strategy}, "
        f"R@5 {best.r5:.3f}, NDCG@10 {best.ndcg10:.3f}; session config: {config}"
    )
    if len(dataset.queries) < 100:
        echo(
            f"only {len(dataset.queries)} queries: differences below ~0.03 may be noise; "
            "label more queries before moving away from the default"
        )
    return rows


async def latency(
    size: int, embeddings: IEmbeddingService, cache_dir: Any, queries: int = 200
) -> list[Row]:
    """p50/p95 per strategy on a synthetic catalogue of ``size`` tools, and the time to
    build its indexes from scratch (the hybrid's without any embedding cache)."""
    tools, texts = synthetic_catalogue(size, queries=queries)
    rows = []
    for strategy in STRATEGIES:
        cold = strategy == "hybrid" or strategy == "keyword"
        coordinator = ToolSelectionCoordinator(
            embeddings=embeddings, cache_dir=False if cold else cache_dir
        )
        start = time.perf_counter()
        await coordinator.warm_up(tools, semantic=strategy != "keyword")
        build_s = time.perf_counter() - start if cold else 0.0
        for text in texts[:10]:  # warm caches and code paths, not the measured queries
            await coordinator.select_tools("warm " + text, tools, k=10, strategy=strategy)
        times = []
        for text in texts:
            start = time.perf_counter()
            await coordinator.select_tools(text, tools, k=10, strategy=strategy)
            times.append((time.perf_counter() - start) * 1000)
        rows.append(
            Row(
                f"synthetic {size}",
                strategy,
                size,
                len(texts),
                p50_ms=statistics.median(times),
                p95_ms=_pct(times, 0.95),
                build_s=build_s,
            )
        )
    return rows


async def latency_runs(
    size: int, embeddings: IEmbeddingService, cache_dir: Any, repeats: int = 1
) -> list[Row]:
    """:func:`latency` ``repeats`` times; per strategy the median of the runs' p50, p95
    and build time (the machine may be shared: one run can be unlucky)."""
    runs = [await latency(size, embeddings, cache_dir) for _ in range(max(1, repeats))]
    rows = []
    for i, first in enumerate(runs[0]):
        same = [run[i] for run in runs]
        first.p50_ms = statistics.median(r.p50_ms for r in same)
        first.p95_ms = statistics.median(r.p95_ms for r in same)
        first.build_s = statistics.median(r.build_s for r in same)
        rows.append(first)
    return rows


async def turn_overhead(n: int = 2000) -> float:
    """Median microseconds of ``select_for_turn`` when every tool fits (the hot path)."""
    from victor.protocols import Tool

    coordinator = ToolSelectionCoordinator(cache_dir=False)
    tools = [Tool(name=f"tool_{i}", description="x") for i in range(10)]
    times = []
    for _ in range(n):
        start = time.perf_counter()
        await coordinator.select_for_turn("hello", tools, config={})
        times.append((time.perf_counter() - start) * 1e6)
    return statistics.median(times)


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not on every platform
        return "n/a"


def machine() -> str:
    try:
        import onnxruntime

        ort = f", onnxruntime {onnxruntime.__version__}"
    except ImportError:  # pragma: no cover
        ort = ""
    return f"{os.cpu_count()} cores, Python {platform.python_version()}{ort}, {platform.machine()}"


def format_table(rows: Sequence[Row], *, quality: bool = True) -> str:
    head = ["data", "strategy", "tools", "queries"]
    head += ["R@1", "R@5", "R@10", "NDCG@10"] if quality else []
    head += ["p50 ms", "p95 ms"] + ([] if quality else ["index build s"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.dataset, r.strategy, f"{r.tools:,}", f"{r.queries:,}"]
        if quality:
            cells += [f"{r.r1:.3f}", f"{r.r5:.3f}", f"{r.r10:.3f}", f"{r.ndcg10:.3f}"]
        cells += [f"{r.p50_ms:.2f}", f"{r.p95_ms:.2f}"]
        if not quality:
            cells.append(f"{r.build_s:.2f}" if r.build_s else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(quality: Sequence[Row], speed: Sequence[Row], path: Path) -> bool:
    """Bars of R@5/NDCG@10 per data set and strategy, and latency per catalogue size."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    datasets = list(dict.fromkeys(r.dataset for r in quality))
    cols = 2
    rows_n = (len(datasets) + 2) // cols
    fig, grid = plt.subplots(rows_n, cols, figsize=(11, 4 * rows_n), squeeze=False)
    axes = list(grid.flat)
    colors = {"keyword": "#8c8c8c", "semantic": "#4c72b0", "hybrid": "#dd8452"}
    for ax, name in zip(axes, datasets, strict=False):
        rows = [r for r in quality if r.dataset == name]
        for i, r in enumerate(rows):
            ax.bar(
                [i - 0.2], [r.r5], 0.4, color=colors.get(r.strategy), label="R@5" if not i else ""
            )
            ax.bar([i + 0.2], [r.ndcg10], 0.4, color=colors.get(r.strategy), alpha=0.55)
            ax.text(i - 0.2, r.r5 + 0.01, f"{r.r5:.2f}", ha="center", fontsize=8)
            ax.text(i + 0.2, r.ndcg10 + 0.01, f"{r.ndcg10:.2f}", ha="center", fontsize=8)
            if name.startswith("MetaTool (test)") and r.strategy in REFERENCE:
                ref = REFERENCE[r.strategy][0]
                ax.hlines(ref, i - 0.4, i, colors="black", linestyles="dashed", linewidth=1)
        ax.set_xticks(range(len(rows)), [r.strategy for r in rows])
        ax.set_ylim(0, 1)
        note = ", dashed: README reference R@5" if name.startswith("MetaTool (test)") else ""
        ax.set_title(f"{name}\nR@5 (solid), NDCG@10 (light){note}", fontsize=9)
    ax = axes[len(datasets)]
    for strategy in STRATEGIES:
        rows = sorted((r for r in speed if r.strategy == strategy), key=lambda r: r.tools)
        sizes = [r.tools for r in rows]
        color = colors[strategy]
        ax.plot(sizes, [r.p50_ms for r in rows], "o-", label=f"{strategy} p50", color=color)
        ax.plot(sizes, [r.p95_ms for r in rows], "x--", label=f"{strategy} p95", color=color)
    for extra in axes[len(datasets) + 1 :]:
        extra.axis("off")
    ax.set_xscale("log")
    ax.set_xlabel("tools in catalogue")
    ax.set_ylabel("ms per query")
    ax.set_title("latency (synthetic catalogue)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


async def run_benchmark(
    data_dir: Path,
    *,
    sample: int = 2000,
    sizes: Sequence[int] = (500, 10_000),
    png: Path | None = None,
    cache_dir: Any = None,
    echo: Any = print,
    quality_sets: bool = True,
    repeats: int = 1,
) -> dict[str, Any]:
    """Run everything, print tables as they complete; returns the rows. ``quality_sets``
    False measures latency only; ``repeats`` runs each latency measurement that many
    times and reports the medians."""
    from victor.selection.embeddings import default_embeddings

    embeddings = default_embeddings()
    echo(f"Tool selection benchmark, {dt.date.today().isoformat()}, {machine()}")
    echo(f"load average at start: {_load()}")
    sets = []
    if quality_sets:
        sets = [
            load_metatool(data_dir, split="test", sample=sample),
            load_metatool(data_dir, split="multi", sample=None),
            load_livemcpbench(data_dir),
            load_gorilla(data_dir),
        ]
    quality = []
    for data in sets:
        for strategy in STRATEGIES:
            quality.append(await evaluate(data, strategy, embeddings, cache_dir))
        echo(format_table([r for r in quality if r.dataset == data.name]))
    if quality:
        echo(
            "reference (data README, MetaTool 2,000 queries) R@5 / NDCG@10: "
            + ", ".join(f"{k} {v[0]:.3f} / {v[1]:.3f}" for k, v in REFERENCE.items())
        )
    speed = []
    runs = f", median of {repeats} runs" if repeats > 1 else ""
    for size in sizes:
        speed += await latency_runs(size, embeddings, cache_dir, repeats)
        echo(f"latency at {size:,} tools{runs} (load average now: {_load()})")
        echo(format_table([r for r in speed if r.tools == size], quality=False))
    overhead = await turn_overhead()
    echo(f"select_for_turn with 10 tools (offer all, the per-turn hot path): {overhead:.1f} us")
    echo(f"load average at end: {_load()}")
    if png is not None and quality:
        echo(f"chart: {png}" if plot(quality, speed, png) else "chart skipped: no matplotlib")
    return {"quality": quality, "latency": speed, "turn_overhead_us": overhead}


def main(data_dir: Path, **kwargs: Any) -> dict[str, Any]:
    return asyncio.run(run_benchmark(data_dir, **kwargs))
