import json

import pytest

from victor import Settings
from victor.agent.coordinators import ConfigCoordinator
from victor.agent.coordinators.config_coordinator import (
    EnvironmentConfigProvider,
    FileConfigProvider,
)
from victor.errors import ConfigError
from victor.protocols import IConfigProvider


def test_settings_defaults_env_and_dotenv(tmp_path, monkeypatch):
    settings = Settings()
    assert settings.max_tool_iterations == 10
    assert settings.sessions_path == settings.data_dir / "sessions.db"
    monkeypatch.setenv("VICTOR_MAX_TOOL_ITERATIONS", "4")
    assert Settings().max_tool_iterations == 4
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("VICTOR_DEFAULT_MODEL=claude-haiku-4-5\n")
    assert Settings().default_model == "claude-haiku-4-5"
    monkeypatch.setenv("VICTOR_TOOL_TIMEOUT", "-1")
    with pytest.raises(ConfigError, match="VICTOR_TOOL_TIMEOUT"):
        Settings()


class Static(IConfigProvider):
    def __init__(self, config, priority):
        self.config, self._priority = config, priority

    def priority(self):
        return self._priority

    async def get_config(self, session_id):
        return self.config


async def test_providers_merge_by_priority_then_override():
    coordinator = ConfigCoordinator(
        providers=[
            Static({"model": "high", "tool_selection": {"strategy": "hybrid"}}, 100),
            Static(
                {
                    "model": "low",
                    "temperature": 0.1,
                    "tool_selection": {"strategy": "keyword", "max_tools": 5},
                },
                1,
            ),
        ]
    )
    config = await coordinator.load_config("s", config_override={"temperature": 0.3})
    assert config == {
        "model": "high",
        "temperature": 0.3,
        "tool_selection": {"strategy": "hybrid", "max_tools": 5},
    }


async def test_environment_provider_parses_and_nests():
    provider = EnvironmentConfigProvider(
        environ={
            "VICTOR_CONFIG_MODEL": "gpt-4o",
            "VICTOR_CONFIG_TEMPERATURE": "0.4",
            "VICTOR_CONFIG_TOOL_SELECTION__STRATEGY": "keyword",
            "OTHER": "x",
        }
    )
    assert await provider.get_config("s") == {
        "model": "gpt-4o",
        "temperature": 0.4,
        "tool_selection": {"strategy": "keyword"},
    }


async def test_file_provider_tenants_sessions_and_hot_reload(tmp_path):
    path = tmp_path / "victor.json"
    path.write_text(
        json.dumps(
            {
                "model": "gpt-4o",
                "tenants": {"acme": {"model": "acme-m"}},
                "sessions": {"acme:vip": {"temperature": 0.0}},
            }
        )
    )
    provider = FileConfigProvider(path, check_interval=0)
    assert (await provider.get_config("plain"))["model"] == "gpt-4o"
    assert await provider.get_config("acme:vip") == {"model": "acme-m", "temperature": 0.0}
    import os

    path.write_text(json.dumps({"model": "gpt-4.1"}))
    os.utime(path, (1, 1))
    assert (await provider.get_config("plain"))["model"] == "gpt-4.1"
    path.write_text("{broken")  # a bad edit keeps the last good config
    os.utime(path, (2, 2))
    assert (await provider.get_config("plain"))["model"] == "gpt-4.1"
    path.unlink()  # so does a file being replaced
    assert (await provider.get_config("plain"))["model"] == "gpt-4.1"
    path.write_text(json.dumps({"model": "back"}))
    assert (await provider.get_config("plain"))["model"] == "back"


def test_file_provider_errors_name_file_and_line(tmp_path):
    bad_json = tmp_path / "a.json"
    bad_json.write_text('{\n  "model": "x",\n  oops\n}')
    with pytest.raises(ConfigError, match=r"a\.json:3"):
        FileConfigProvider(bad_json)
    bad_yaml = tmp_path / "b.yaml"
    bad_yaml.write_text("model: x\ntenants: [1, 2\n")
    with pytest.raises(ConfigError, match=r"b\.yaml:\d+"):
        FileConfigProvider(bad_yaml)
    not_mapping = tmp_path / "c.yaml"
    not_mapping.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        FileConfigProvider(not_mapping)
    with pytest.raises(ConfigError, match="not found"):
        FileConfigProvider(tmp_path / "missing.json")
