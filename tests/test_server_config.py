"""``victor serve``'s config: the file, the environment over it, the flags over both,
and one clear line for a mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_server_keys import victor
from victor.errors import ConfigError
from victor.server.settings import load_serve_config

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "server.yaml"


def test_the_example_config_loads_with_paths_relative_to_it():
    config = load_serve_config(EXAMPLE)
    assert config.server.port == 8000
    assert config.server.models == ["gpt-4o-mini", "gpt-4o"]
    assert config.server.keys == str(EXAMPLE.parent / "keys.db")
    assert config.orchestrator.provider == "openai"
    assert config.orchestrator.session_config == EXAMPLE.parent / "victor.yaml"


def test_environment_overrides_the_file_and_flags_override_both(monkeypatch):
    monkeypatch.setenv("VICTOR_SERVER_PORT", "9001")
    monkeypatch.setenv("VICTOR_MODEL", "gpt-4o")
    config = load_serve_config(EXAMPLE)
    assert (config.server.port, config.orchestrator.model) == (9001, "gpt-4o")
    assert load_serve_config(EXAMPLE, port=9002).server.port == 9002
    monkeypatch.setenv("VICTOR_PROVIDER", "simulated")
    assert load_serve_config(None).orchestrator.provider == "simulated"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("server:\n  port: high\n", "port: Input should be a valid integer"),
        ("server:\n  prot: 1\n", "prot: Extra inputs are not permitted"),
        ("orchestrator:\n  provider: gemini\n", "provider: Input should be"),
        ("servers: {}\n", "unknown sections servers"),
        ("server: [1]\n", "'server' must be a mapping"),
        ("server: {port: [\n", "invalid YAML"),
    ],
)
def test_a_mistake_is_one_line_naming_the_file(tmp_path, text, message):
    path = tmp_path / "victor.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_serve_config(path)
    assert str(path) in str(error.value) and message in str(error.value)
    assert "\n" not in str(error.value)


def test_victor_serve_with_a_bad_config_exits_2_with_one_line(tmp_path):
    path = tmp_path / "victor.yaml"
    path.write_text("server:\n  port: high\n")
    done = victor("serve", "--config", str(path))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "port" in done.stderr
    missing = victor("serve", "--config", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "config file not found" in missing.stderr
