"""Fusion, top-k and retrieval metrics; the benchmark's data loaders and CLI."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from victor.selection.datasets import (
    DataError,
    load_gorilla,
    load_livemcpbench,
    load_metatool,
    load_user_catalogue,
    load_user_queries,
)
from victor.selection.hybrid import DEFAULT_ALPHA, blend, query_alpha, standardise, top_k
from victor.selection.metrics import mrr, ndcg_at_k, recall_at_k


def test_top_k_is_best_first_and_breaks_ties_by_catalogue_order() -> None:
    scores = np.array([0.1, 0.9, 0.5, 0.9, 0.0, 0.5], dtype=np.float32)
    assert top_k(scores, 3) == [1, 3, 2]
    assert top_k(scores, 10) == [1, 3, 2, 5, 0, 4]
    assert top_k(np.zeros(6, dtype=np.float32), 2) == [0, 1]
    assert top_k(scores, 0) == [] and top_k(np.array([]), 3) == []


def test_blend_standardises_each_signal() -> None:
    z = standardise(np.array([2.0, 4.0, 3.0]))
    np.testing.assert_allclose(z, [-1.2247449, 1.2247449, 0.0], rtol=1e-6)
    np.testing.assert_array_equal(standardise(np.array([7.0, 7.0])), [0.0, 0.0])
    semantic = np.array([0.2, 0.4, 0.3])
    keyword = np.array([10.0, 0.0, 5.0])
    np.testing.assert_allclose(blend(semantic, keyword, 1.0), z, rtol=1e-6)
    np.testing.assert_allclose(blend(semantic, keyword, 0.0), -z, rtol=1e-6)
    np.testing.assert_allclose(blend(semantic, keyword, 0.5), [0.0, 0.0, 0.0], atol=1e-6)
    # Scale-free: multiplying a signal by any positive factor changes nothing.
    np.testing.assert_allclose(
        blend(semantic, keyword * 37.0, 0.7), blend(semantic, keyword, 0.7), rtol=1e-5
    )
    # No keyword match at all: the semantic side alone ranks.
    assert top_k(blend(semantic, np.zeros(3), 0.75), 3) == [1, 2, 0]


def test_query_alpha_gives_keywords_more_say_the_more_query_words_are_indexed() -> None:
    from victor.selection.bm25 import BM25Index

    index = BM25Index(["read a file from disk", "send an email message"])
    assert index.coverage("read the file") == 1.0  # "the" is a stop word
    assert index.coverage("read the spreadsheet") == 0.5
    assert index.coverage("ordonner la facture") == 0.0 and index.coverage("the") == 0.0
    # The hybrid's one-tokenisation call gives the same scores and coverage.
    scores, coverage = index.scores_and_coverage("read the spreadsheet")
    assert coverage == 0.5 and scores[0] > 0 and scores[1] == 0
    np.testing.assert_array_equal(scores, index.scores("read the spreadsheet"))
    scores, coverage = index.scores_and_coverage("ordonner la facture")
    assert coverage == 0.0 and not scores.any()
    assert query_alpha(0.8, 0.5) == pytest.approx(0.8)
    assert query_alpha(0.8, 1.0) == pytest.approx(0.6)
    assert query_alpha(0.8, 0.0) == pytest.approx(1.0)
    assert query_alpha(0.1, 1.0) == 0.0 and query_alpha(1.0, 0.0) == 1.0  # within [0, 1]
    assert query_alpha(0.8, 1.0, slope=0.0) == pytest.approx(0.8)


def test_metrics() -> None:
    ranked = ["a", "b", "a", "c", "d"]  # a duplicate name counts once
    assert recall_at_k(ranked, {"c"}, 3) == 1.0  # deduplicated: a, b, c
    assert recall_at_k(ranked, {"c", "z"}, 5) == 0.5
    assert ndcg_at_k(["x", "a"], {"a"}, 10) == pytest.approx(1 / math.log2(3))
    assert ndcg_at_k(["a", "b"], {"a", "b"}, 10) == pytest.approx(1.0)
    assert mrr(["x", "y", "a"], {"a"}) == pytest.approx(1 / 3)
    assert recall_at_k(ranked, set(), 5) == 0.0 and mrr(ranked, {"q"}) == 0.0


# The data sets sit beside the checkout (../shared), or where $VICTOR_BENCH_DATA says.
_BESIDE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tool-retrieval"
DATA = Path(os.environ.get("VICTOR_BENCH_DATA") or _BESIDE)
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
    gorilla = load_gorilla(DATA)
    sizes = {p.name: (len(p.tools), len(p.queries)) for p in gorilla.parts}
    assert sizes == {
        "Gorilla huggingface": (907, 904),
        "Gorilla tensorflowhub": (56, 681),
        "Gorilla torchhub": (94, 185),
    }
    for part in gorilla.parts:  # every gold tool is in its own hub's catalogue
        names = {t.name for t in part.tools}
        assert all(q.gold <= names for q in part.queries)
    assert len(load_gorilla(DATA, split="tune").queries) < len(gorilla.queries)


def test_bench_cli_reports_missing_data(tmp_path, monkeypatch) -> None:
    from victor.cli.bench import app

    monkeypatch.delenv("VICTOR_BENCH_DATA", raising=False)
    result = CliRunner().invoke(app, ["tools", "--data", str(tmp_path)])
    assert result.exit_code == 2 and "pass --data" in result.output
    assert str(tmp_path) in result.output
    # No guessing from where the package is installed: without --data it says what to pass.
    result = CliRunner().invoke(app, ["tools"])
    assert result.exit_code == 2 and "--data DIR" in result.output and "--tools" in result.output


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_user_catalogue_shapes_and_errors(tmp_path) -> None:
    tools = _write(
        tmp_path / "tools.json",
        json.dumps(
            [
                {"name": "get_weather", "description": "Weather forecast for a city"},
                {
                    "type": "function",
                    "function": {"name": "send_email", "description": "Send an email"},
                },
                {
                    "name": "read_file",
                    "description": "Read a file",
                    "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}}},
                },
            ]
        ),
    )
    catalogue = load_user_catalogue(tools)
    assert [t.name for t in catalogue] == ["get_weather", "send_email", "read_file"]
    assert "path" in catalogue[2].parameters["properties"]
    queries = _write(
        tmp_path / "q.jsonl",
        '{"query": "will it rain in Paris", "gold": "get_weather"}\n\n'
        '{"query": "mail Bob", "gold": ["send_email"]}\n',
    )
    loaded = load_user_queries(queries, {t.name for t in catalogue})
    assert [q.gold for q in loaded] == [frozenset({"get_weather"}), frozenset({"send_email"})]

    bad = _write(
        tmp_path / "bad.jsonl",
        '{"query": "x", "gold": ["get_weather"]}\n{"query": "y", "gold": ["nope"]}\n',
    )
    with pytest.raises(DataError, match=r"bad.jsonl:2: gold tool 'nope' is not in the tool file"):
        load_user_queries(bad, {"get_weather"})
    with pytest.raises(DataError, match=r"broken.json:1: not valid JSON"):
        load_user_catalogue(_write(tmp_path / "broken.json", "[{"))
    with pytest.raises(DataError, match=r"tool 2: the tool has no \"name\""):
        load_user_catalogue(_write(tmp_path / "t.json", '[{"name": "a"}, {"description": "b"}]'))


def test_bench_cli_on_a_user_catalogue(tmp_path, monkeypatch) -> None:
    from victor.cli.bench import app

    monkeypatch.setenv("VICTOR_DATA_DIR", str(tmp_path / "data"))  # embedding cache
    names = ["get_weather", "send_email", "read_file", "create_invoice", "book_flight"]
    descriptions = [
        "Weather forecast for a city",
        "Send an email message to someone",
        "Read the contents of a file on disk",
        "Create an invoice for a customer",
        "Book a flight between two airports",
    ]
    tools = _write(
        tmp_path / "tools.json",
        json.dumps(
            [{"name": n, "description": d} for n, d in zip(names, descriptions, strict=True)]
        ),
    )
    queries = _write(
        tmp_path / "queries.jsonl",
        "\n".join(
            json.dumps({"query": q, "gold": [g]})
            for q, g in [
                ("will it rain tomorrow in Oslo", "get_weather"),
                ("email the report to Alice", "send_email"),
                ("bill the customer for March", "create_invoice"),
                ("I need a plane ticket to Rome", "book_flight"),
            ]
        ),
    )
    result = CliRunner().invoke(app, ["tools", "--tools", str(tools), "--queries", str(queries)])
    assert result.exit_code == 0, result.output
    assert "5 tools" in result.output and "4 queries" in result.output
    default = f"hybrid alpha {DEFAULT_ALPHA:g} (default)"
    for label in ("keyword", "semantic", default, "hybrid alpha 0.5"):
        assert f"| {label} |" in result.output
    assert "best on this catalogue" in result.output and "session config" in result.output

    result = CliRunner().invoke(app, ["tools", "--tools", str(tools)])
    assert result.exit_code == 2 and "go together" in result.output
    bad = _write(tmp_path / "bad.jsonl", '{"query": "x"}\n')
    result = CliRunner().invoke(app, ["tools", "--tools", str(tools), "--queries", str(bad)])
    assert result.exit_code == 2 and "bad.jsonl:1:" in result.output
    assert "Traceback" not in result.output
