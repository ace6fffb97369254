"""Fusion, top-k and retrieval metrics; the benchmark's data loaders and CLI."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from victor.selection.datasets import default_data_dir, load_livemcpbench, load_metatool
from victor.selection.hybrid import blend, minmax, rrf, top_k
from victor.selection.metrics import mrr, ndcg_at_k, recall_at_k


def test_top_k_is_best_first_and_breaks_ties_by_catalogue_order() -> None:
    scores = np.array([0.1, 0.9, 0.5, 0.9, 0.0, 0.5], dtype=np.float32)
    assert top_k(scores, 3) == [1, 3, 2]
    assert top_k(scores, 10) == [1, 3, 2, 5, 0, 4]
    assert top_k(np.zeros(6, dtype=np.float32), 2) == [0, 1]
    assert top_k(scores, 0) == [] and top_k(np.array([]), 3) == []


def test_blend_normalises_each_signal() -> None:
    np.testing.assert_allclose(minmax(np.array([2.0, 4.0, 3.0])), [0.0, 1.0, 0.5])
    np.testing.assert_array_equal(minmax(np.array([7.0, 7.0])), [0.0, 0.0])
    semantic = np.array([0.2, 0.4, 0.3])
    keyword = np.array([10.0, 0.0, 5.0])
    np.testing.assert_allclose(blend(semantic, keyword, 1.0), [0.0, 1.0, 0.5], rtol=1e-6)
    np.testing.assert_allclose(blend(semantic, keyword, 0.0), [1.0, 0.0, 0.5], rtol=1e-6)
    np.testing.assert_allclose(blend(semantic, keyword, 0.5), [0.5, 0.5, 0.5], rtol=1e-6)
    assert top_k(rrf(semantic, keyword), 3) == [0, 1, 2]  # 0 and 1 tie, ahead of 2


def test_metrics() -> None:
    ranked = ["a", "b", "a", "c", "d"]  # a duplicate name counts once
    assert recall_at_k(ranked, {"c"}, 3) == 1.0  # deduplicated: a, b, c
    assert recall_at_k(ranked, {"c", "z"}, 5) == 0.5
    assert ndcg_at_k(["x", "a"], {"a"}, 10) == pytest.approx(1 / math.log2(3))
    assert ndcg_at_k(["a", "b"], {"a", "b"}, 10) == pytest.approx(1.0)
    assert mrr(["x", "y", "a"], {"a"}) == pytest.approx(1 / 3)
    assert recall_at_k(ranked, set(), 5) == 0.0 and mrr(ranked, {"q"}) == 0.0


# The data sets sit beside the checkout (../shared); the installed package may not.
_BESIDE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tool-retrieval"
DATA = _BESIDE if _BESIDE.is_dir() else default_data_dir()
needs_data = pytest.mark.skipif(
    not (DATA / "MetaTool").is_dir(), reason=f"no tool-retrieval data at {DATA}"
)


@needs_data
def test_loaders_and_disjoint_splits() -> None:
    tune = load_metatool(DATA, split="tune", sample=None)
    test = load_metatool(DATA, split="test", sample=None)
    assert len(tune.tools) == 199
    assert not {q.text for q in tune.queries} & {q.text for q in test.queries}
    assert len(tune.queries) + len(test.queries) == 20_550  # unique query texts
    sampled = load_metatool(DATA, sample=50)
    assert len(sampled.queries) == 50 and sampled.queries == load_metatool(DATA, sample=50).queries
    live = load_livemcpbench(DATA)
    assert len(live.tools) == 527 and live.notes["matched"] == 251
    assert len(live.queries) == 94


def test_bench_cli_reports_missing_data(tmp_path) -> None:
    from victor.cli.bench import app

    result = CliRunner().invoke(app, ["tools", "--data", str(tmp_path)])
    assert result.exit_code == 2 and "pass --data" in result.output
