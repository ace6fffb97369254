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
