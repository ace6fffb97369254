"""Price tables: built-in, from a file or a dict; an unknown model is unpriced, never $0."""

from __future__ import annotations

import json
from datetime import date

import pytest

from victor.analytics import pricing
from victor.analytics.pricing import PriceTable, load_price_table, set_default_price_table
from victor.protocols import Usage

MILLION = Usage(input_tokens=1_000_000, output_tokens=1_000_000)


def test_unknown_model_is_unpriced_not_free():
    table = PriceTable()
    assert table.cost("my-private-model", MILLION) is None
    quote = table.quote("my-private-model", MILLION)
    assert quote.unpriced and quote.cost_usd is None
    assert table.quote(None, MILLION).unpriced


def test_builtin_prices_by_date_and_family():
    table = PriceTable()
    assert table.cost("gpt-4o-2024-08-06", MILLION, at=date(2024, 6, 1)) == 20.0
    assert table.cost("openai/gpt-4o", MILLION, at=date(2025, 1, 1)) == 12.5
    assert table.cost("gpt-4o", MILLION, at=date(2020, 1, 1)) is None  # before any price
    quote = table.quote("claude-sonnet-4-5-20250929", MILLION)
    assert quote.priced_as == "claude-sonnet-4-5" and quote.cost_usd == 18.0


def test_from_config_adds_and_overrides():
    table = PriceTable.from_config(
        {
            "version": "acme-2026-11",
            "models": {
                "Acme-FT": {"input": 1.0, "output": 2.0},
                "gpt-4o": [{"input": 1.0, "output": 1.0, "effective_from": "2026-01-01"}],
            },
            "prices": [{"model": "local-llama", "input": 0, "output": 0}],
        }
    )
    assert table.version == "acme-2026-11"
    assert table.cost("acme-ft-v3", MILLION) == 3.0
    assert table.cost("gpt-4o", MILLION, at=date(2026, 6, 1)) == 2.0
    assert table.cost("gpt-4o", MILLION, at=date(2025, 6, 1)) == 12.5  # history kept
    assert table.cost("local-llama", MILLION) == 0.0  # priced at zero on purpose
    only = PriceTable.from_config([{"model": "x", "input": 1, "output": 1}], builtin=False)
    assert only.models == ["x"]


def test_from_yaml_and_json_files(tmp_path):
    yaml_file = tmp_path / "prices.yaml"
    yaml_file.write_text("prices:\n  - {model: m1, input: 1, output: 1, cached_input: 0.1}\n")
    assert PriceTable.from_file(yaml_file).cost("m1", MILLION) == 2.0
    json_file = tmp_path / "prices.json"
    json_file.write_text(json.dumps({"models": {"m2": {"input": 2, "output": 2}}}))
    assert load_price_table(json_file).cost("m2", MILLION) == 4.0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"prices": [{"model": "m", "input": 1}]}', "price entry 0 ('m')"),
        ('{"prices": [{"model": "m", "input": -1, "output": 1}]}', "negative"),
        ('{"prices": [{"model": "m", "input": 1, "output": 1, "effective_from": "soon"}]}', "m"),
        ('{"prices": [', "prices.json:1: invalid JSON"),
    ],
)
def test_bad_price_files_say_where(tmp_path, content, message):
    path = tmp_path / "prices.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=r"prices\.json") as info:
        PriceTable.from_file(path)
    assert message in str(info.value)


def test_default_table_reads_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"models": {"env-model": {"input": 5, "output": 5}}}))
    monkeypatch.setenv("VICTOR_PRICES_FILE", str(path))
    monkeypatch.setattr(pricing, "_default", None)
    try:
        assert pricing.default_price_table().cost("env-model", MILLION) == 10.0
        assert pricing.default_price_table() is pricing.default_price_table()
    finally:
        set_default_price_table(None)
