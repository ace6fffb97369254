"""Prices: genai-prices with our overrides on top; an unknown model is unpriced, never $0."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date

import pytest

from victor import pricing
from victor.pricing import PriceTable, load_price_table, set_default_price_table
from victor.protocols import Usage

MILLION = Usage(input_tokens=1_000_000, output_tokens=1_000_000)


def test_unknown_model_is_unpriced_not_free():
    table = PriceTable()
    assert table.cost("my-private-model", MILLION) is None
    assert table.price("my-private-model") is None
    assert table.cost(None, MILLION) is None


def test_builtin_prices_come_from_genai_prices():
    table = PriceTable()
    assert table.cost("openai/gpt-4o", MILLION) == 12.5  # provider/model
    assert table.price("claude-sonnet-4-5-20250929").model == "claude-sonnet-4-5"
    assert table.cost("claude-sonnet-4-5-20250929", Usage(input_tokens=1000)) == pytest.approx(
        0.003
    )
    assert table.version.startswith("genai-prices ")


def test_cached_input_and_tiers_are_priced_where_the_table_knows_them():
    table = PriceTable()
    cached = Usage(input_tokens=1_000_000, cached_input_tokens=1_000_000)
    assert table.cost("gpt-4o", cached) == 1.25  # the cache-read rate, not the input rate
    small, large = Usage(input_tokens=100_000), Usage(input_tokens=300_000)
    per_token_small = table.cost("gemini-2.5-pro", small) / 100_000
    per_token_large = table.cost("gemini-2.5-pro", large) / 300_000
    assert per_token_large == pytest.approx(2 * per_token_small)  # the tier past 200k


def test_overrides_add_and_replace_from_a_date_on():
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
    assert table.version.endswith("acme-2026-11")
    assert table.cost("acme-ft-v3", MILLION) == 3.0
    assert table.cost("gpt-4o", MILLION, at=date(2026, 6, 1)) == 2.0
    assert table.cost("gpt-4o", MILLION, at=date(2025, 6, 1)) == 12.5  # the built-in before
    assert table.cost("local-llama", MILLION) == 0.0  # priced at zero on purpose
    only = PriceTable.from_config([{"model": "x", "input": 1, "output": 1}], builtin=False)
    assert only.models == ["x"] and only.cost("gpt-4o", MILLION) is None


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


def test_prices_need_no_network():
    """Sockets refused: the shipped table still prices, nothing is fetched."""
    code = (
        "import socket\n"
        "def refuse(*a, **k): raise OSError('network used')\n"
        "socket.socket.connect = refuse; socket.create_connection = refuse\n"
        "from victor.pricing import PriceTable\n"
        "from victor.protocols import Usage\n"
        "print(PriceTable().cost('gpt-4o-mini', Usage(input_tokens=10**6)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0.15"
