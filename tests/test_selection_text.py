"""Identifier splitting, tokenising and tool documents for keyword selection."""

from __future__ import annotations

import pytest

from victor.protocols import Tool
from victor.selection.text import Tokenizer, keyword_document, split_identifier


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("readFile", "read File"),
        ("read_file", "read file"),
        ("getHTTPResponse", "get HTTP Response"),
        ("XMLHttpRequest", "XML Http Request"),
        ("PDF&URLTool", "PDF URL Tool"),
        ("kebab-case-name", "kebab case name"),
        ("mcp.server/tool", "mcp server tool"),
        ("get_weather2day", "get weather 2 day"),
        ("SummarizeAnything_pr", "Summarize Anything pr"),
        ("__private__", "private"),
    ],
)
def test_split_identifier(name: str, words: str) -> None:
    assert split_identifier(name) == words


def test_tokenizer_splits_stems_and_drops_stopwords() -> None:
    tokens = Tokenizer()("Can you find the getWeatherForecasts for running_shoes?")
    assert tokens == ["weather", "forecast", "run", "shoe"]


def test_tokenizer_keeps_cjk_characters_and_can_skip_stemming() -> None:
    assert Tokenizer()("必应搜索") == ["必", "应", "搜", "索"]
    assert Tokenizer(stopwords=(), stem=False)("the Running dogs") == ["the", "running", "dogs"]


def test_keyword_document_covers_name_description_and_parameters() -> None:
    tool = Tool(
        name="sendEmail",
        description="Deliver a message.",
        tags=["mail"],
        parameters={
            "type": "object",
            "properties": {"recipientAddress": {"type": "string", "description": "who"}},
        },
    )
    doc = keyword_document(tool)
    assert doc.count("send Email") == 2  # the name weighs double
    for part in ("Deliver a message.", "mail", "recipient Address who"):
        assert part in doc


def test_memo_eviction_never_leaves_a_query_unstemmed() -> None:
    tokenizer = Tokenizer(memo_limit=3)
    assert tokenizer("running shoes") == ["run", "shoe"]
    # These new words push the memo past its limit: the query is still stemmed.
    assert tokenizer("running dogs forecasts flying") == ["run", "dog", "forecast", "fli"]
    assert len(tokenizer._cache) <= 3
    assert tokenizer("flying dogs") == ["fli", "dog"]


def test_one_tokenizer_serves_several_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    words = [f"{stem}{suffix}" for stem in ("walk", "jump", "play", "test") for suffix in "s"]
    texts = [f"running {w} searching{i} {w}ing" for i, w in enumerate(words * 50)]
    expected = [Tokenizer()(t) for t in texts]
    shared = Tokenizer(memo_limit=16)  # small: evictions race with lookups
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(5):
            assert list(pool.map(shared, texts)) == expected
