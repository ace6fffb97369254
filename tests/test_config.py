import json
import logging
import os
import sqlite3
from pathlib import Path

import pytest

from victor import AgentOrchestrator, Settings
from victor.agent.coordinators import ConfigCoordinator
from victor.agent.coordinators.config_coordinator import (
    EnvironmentConfigProvider,
    FileConfigProvider,
    TenantConfigProvider,
)
from victor.errors import ConfigError
from victor.protocols import IConfigProvider
from victor.providers import FunctionProvider

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


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
    def __init__(self, config, priority=0):
        self.config, self._priority = config, priority

    def priority(self):
        return self._priority

    async def get_config(self, session_id):
        return self.config


class Broken(IConfigProvider):
    def __init__(self):
        self.fail = True

    def priority(self):
        return 5

    async def get_config(self, session_id):
        if self.fail:
            raise OSError("database unreachable")
        return {"max_tokens": 99}


async def test_providers_merge_by_priority_then_override():
    high = Static({"model": "high", "tool_selection": {"strategy": "hybrid"}}, 100)
    low = Static(
        {"model": "low", "temperature": 0.1, "tool_selection": {"strategy": "keyword", "x": 5}},
        1,
    )
    coordinator = ConfigCoordinator(providers=[high, low])
    config = await coordinator.load_config("s", config_override={"temperature": 0.3})
    assert config == {
        "model": "high",
        "temperature": 0.3,
        "tool_selection": {"strategy": "hybrid", "x": 5},
    }
    # The merged config is the turn's own: changing it leaves the providers' as they were.
    config["tool_selection"]["strategy"] = "changed"
    assert high.config["tool_selection"] == {"strategy": "hybrid"}
    assert low.config["tool_selection"]["strategy"] == "keyword"


async def test_a_raising_provider_is_logged_once_and_skipped_unless_strict(caplog):
    broken = Broken()
    coordinator = ConfigCoordinator(providers=[Static({"model": "m"}), broken])
    with caplog.at_level(logging.WARNING, logger="victor.agent.coordinators.config_coordinator"):
        assert await coordinator.load_config("s") == {"model": "m"}
        assert await coordinator.load_config("s") == {"model": "m"}
        failures = [r for r in caplog.records if "database unreachable" in r.getMessage()]
        assert len(failures) == 1 and "Broken" in failures[0].getMessage()
        broken.fail = False
        assert await coordinator.load_config("s") == {"model": "m", "max_tokens": 99}
        assert any("works again" in r.getMessage() for r in caplog.records)
    broken.fail = True
    strict = ConfigCoordinator(providers=[broken], strict=True)
    with pytest.raises(ConfigError, match="config provider Broken failed: OSError"):
        await strict.load_config("s")


class NotADict(IConfigProvider):
    async def get_config(self, session_id):
        return ["model"]


async def test_a_provider_returning_a_non_dict_counts_as_failing():
    assert await ConfigCoordinator(providers=[NotADict()]).load_config("s") == {}
    with pytest.raises(ConfigError, match="returned list, not a dict"):
        await ConfigCoordinator(providers=[NotADict()], strict=True).load_config("s")


def test_what_is_not_a_provider_is_refused_when_added():
    with pytest.raises(TypeError, match=r"a config provider has get_config\(\) and priority\(\)"):
        ConfigCoordinator(providers=[{"model": "m"}])
    coordinator = ConfigCoordinator()
    with pytest.raises(TypeError, match=r"'victor\.yaml' has not"):
        coordinator.add_provider("victor.yaml")

    class Vague(Static):
        def priority(self):
            return "high"

    with pytest.raises(TypeError, match="priority\\(\\) must return an int, not str"):
        coordinator.add_provider(Vague({}))
    assert coordinator.providers == []


def orchestrator(coordinator, **kwargs):
    return AgentOrchestrator(
        settings=Settings(),
        provider=FunctionProvider(lambda messages, tools: "ok"),
        model="m",
        _config_coordinator=coordinator,
        **kwargs,
    )


async def test_wrong_values_are_rejected_naming_the_key_and_the_source(tmp_path):
    path = tmp_path / "victor.yaml"
    path.write_text("tool_selection:\n  strategy: hybird\n")
    orch = orchestrator(
        ConfigCoordinator(
            providers=[FileConfigProvider(path), Static({"temperature": "hot"}, priority=1)]
        )
    )
    with pytest.raises(ConfigError) as caught:
        await orch.chat("hi", session_id="s")
    message = str(caught.value)
    assert "'temperature': Input should be a valid number (got 'hot'), from Static" in message
    assert "'tool_selection.strategy': unknown name 'hybird'" in message
    assert f"from file {path}" in message and "accepted: all, default, hybrid" in message
    assert await orch.list_sessions() == []
    # The turn's own override is named too.
    orch.config_coordinator = ConfigCoordinator(providers=[])
    with pytest.raises(ConfigError, match=r"'max_tokens'.*from the turn's config override"):
        await orch.chat("hi", session_id="s", max_tokens=-1)
    await orch.aclose()


async def test_strategy_names_registered_on_the_orchestrator_are_accepted(tmp_path):
    from victor.agent.coordinators import ToolSelectionCoordinator

    class Everything:
        async def select_tools(self, query, available_tools, selection_coordinator):
            return list(available_tools)

    selection = ToolSelectionCoordinator()
    selection.register_strategy("everything", Everything())
    coordinator = ConfigCoordinator(
        providers=[Static({"tool_selection": {"strategy": "everything"}})]
    )
    orch = orchestrator(coordinator, _tool_selection_coordinator=selection)
    assert (await orch.chat("hi", session_id="s")).content == "ok"
    orch.config_coordinator = ConfigCoordinator(
        providers=[Static({"context_compaction_strategy": "nope"})]
    )
    with pytest.raises(ConfigError, match="'context_compaction_strategy': unknown name 'nope'"):
        await orch.chat("hi", session_id="s")
    await orch.aclose()


async def test_a_subclass_replacing_load_config_keeps_working():
    class Variants(ConfigCoordinator):
        def __init__(self, config):  # no super().__init__(), as recipe 9 does
            self.config = config

        async def load_config(self, session_id, config_override=None):
            return dict(self.config)

    orch = orchestrator(Variants({"max_tokens": 5, "variant": "a"}))
    assert (await orch.chat("hi", session_id="s")).variant == "a"
    orch.config_coordinator = Variants({"max_tokens": "five"})
    with pytest.raises(ConfigError, match=r"'max_tokens'.*from Variants.load_config"):
        await orch.chat("hi", session_id="s")
    await orch.aclose()


# -- environment --------------------------------------------------------------------------


async def test_environment_provider_reads_victor_variables_through_pydantic_settings(
    monkeypatch,
):
    monkeypatch.setenv("VICTOR_MODEL", "gpt-4o")
    monkeypatch.setenv("VICTOR_TEMPERATURE", "0.4")
    monkeypatch.setenv("VICTOR_ENABLE_ANALYTICS", "false")
    monkeypatch.setenv("VICTOR_TOOL_SELECTION__STRATEGY", "keyword")
    monkeypatch.setenv("VICTOR_TOOL_SELECTION__MAX_TOOLS", "5")
    monkeypatch.setenv("VICTOR_DATA_DIR", "/elsewhere")  # a Settings field, not session config
    provider = EnvironmentConfigProvider()
    assert await provider.get_config("s") == {
        "model": "gpt-4o",
        "temperature": 0.4,
        "enable_analytics": False,
        "tool_selection": {"strategy": "keyword", "max_tools": 5},
    }
    monkeypatch.delenv("VICTOR_TOOL_SELECTION__STRATEGY")
    monkeypatch.delenv("VICTOR_TOOL_SELECTION__MAX_TOOLS")
    monkeypatch.setenv("VICTOR_TOOL_SELECTION", '{"strategy": "semantic", "hybrid_alpha": 0.3}')
    provider.reload()
    assert (await provider.get_config("s"))["tool_selection"] == {
        "strategy": "semantic",
        "hybrid_alpha": 0.3,
    }


def test_environment_provider_names_the_bad_variable(monkeypatch):
    monkeypatch.setenv("VICTOR_TEMPERATURE", "hot")
    with pytest.raises(ConfigError, match=r"^environment variable VICTOR_TEMPERATURE: .*'hot'"):
        EnvironmentConfigProvider()
    monkeypatch.delenv("VICTOR_TEMPERATURE")
    monkeypatch.setenv("VICTOR_TOOL_SELECTION__MAX_TOOLS", "0")
    with pytest.raises(ConfigError, match=r"VICTOR_TOOL_SELECTION__MAX_TOOLS: .*greater than"):
        EnvironmentConfigProvider()


# -- file -----------------------------------------------------------------------------------


def touch(path, stamp):
    os.utime(path, (stamp, stamp))


async def test_file_provider_tenants_sessions_and_hot_reload(tmp_path, caplog):
    path = tmp_path / "victor.json"
    path.write_text(
        json.dumps(
            {
                "model": "gpt-4o",
                "tool_selection": {"strategy": "keyword", "max_tools": 4},
                "tenants": {"acme": {"model": "acme-m", "tool_selection": {"max_tools": 2}}},
                "sessions": {"acme:vip": {"temperature": 0.0}},
            }
        )
    )
    provider = FileConfigProvider(path, check_interval=0)
    assert (await provider.get_config("plain"))["model"] == "gpt-4o"
    assert await provider.get_config("acme:vip") == {
        "model": "acme-m",
        "tool_selection": {"strategy": "keyword", "max_tools": 2},
        "temperature": 0.0,
    }
    path.write_text(json.dumps({"model": "gpt-4.1"}))
    touch(path, 1)
    assert (await provider.get_config("plain"))["model"] == "gpt-4.1"
    with caplog.at_level(logging.ERROR):
        path.write_text("{broken")  # a bad edit keeps the last good config
        touch(path, 2)
        assert (await provider.get_config("plain"))["model"] == "gpt-4.1"
        assert (await provider.get_config("plain"))["model"] == "gpt-4.1"
        path.write_text('{"temperature": "hot"}')  # so does a wrong value
        touch(path, 3)
        assert (await provider.get_config("plain"))["model"] == "gpt-4.1"
        path.unlink()  # and a file being replaced
        assert (await provider.get_config("plain"))["model"] == "gpt-4.1"
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 3  # each problem logged once
    assert "victor.json:1:2: invalid JSON" in errors[0]
    assert "'temperature'" in errors[1] and "not found" in errors[2]
    path.write_text(json.dumps({"model": "back"}))
    assert (await provider.get_config("plain"))["model"] == "back"


async def test_file_provider_looks_at_the_file_once_per_check_interval(tmp_path):
    path = tmp_path / "victor.yaml"
    path.write_text("model: one\n")
    provider = FileConfigProvider(path, check_interval=3600)
    path.write_text("model: two\n")
    touch(path, 5)
    assert (await provider.get_config("s"))["model"] == "one"
    await provider.reload()
    assert (await provider.get_config("s"))["model"] == "two"


def test_file_provider_errors_name_file_line_and_column(tmp_path):
    bad_json = tmp_path / "a.json"
    bad_json.write_text('{\n  "model": "x",\n  oops\n}')
    with pytest.raises(ConfigError, match=r"a\.json:3:3: invalid JSON"):
        FileConfigProvider(bad_json)
    bad_yaml = tmp_path / "b.yaml"
    bad_yaml.write_text("model: x\ntenants: [1, 2\n")
    with pytest.raises(ConfigError, match=r"b\.yaml:3:1: invalid YAML"):
        FileConfigProvider(bad_yaml)
    not_mapping = tmp_path / "c.yaml"
    not_mapping.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:1:1: the top level must be a mapping"):
        FileConfigProvider(not_mapping)
    with pytest.raises(ConfigError, match=r"missing\.json: config file not found"):
        FileConfigProvider(tmp_path / "missing.json")
    binary = tmp_path / "d.yaml"
    binary.write_bytes(b"model: \xff\xfe\n")
    with pytest.raises(ConfigError, match=r"d\.yaml: cannot read"):
        FileConfigProvider(binary)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("model: m\ntemperature: hot\n", r"e\.yaml:2:14: 'temperature': Input should be a valid"),
        ("temperature: 3\n", r"e\.yaml:1:14: 'temperature': .*less than or equal to 2"),
        ("enable_analytics: 'false'\n", r"e\.yaml:1:19: 'enable_analytics': .*valid boolean"),
        ("tool_selection:\n  max_tools: many\n", r"e\.yaml:2:14: 'tool_selection.max_tools'"),
        ("tool_selection: keyword\n", r"e\.yaml:1:17: 'tool_selection': .*"),
        (
            "tenants:\n  acme:\n    max_tokens: -5\n",
            r"e\.yaml:3:17: 'tenants.acme.max_tokens': .*greater than 0",
        ),
        ("tenants:\n  acme: fast\n", r"e\.yaml:2:9: 'tenants.acme': must be a mapping"),
        ("sessions: [a]\n", r"e\.yaml:1:11: 'sessions': must map names to settings"),
    ],
)
def test_file_provider_checks_the_known_keys(tmp_path, text, expected):
    path = tmp_path / "e.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=expected):
        FileConfigProvider(path)


def test_a_wrong_value_in_a_json_file_is_located_too(tmp_path):
    path = tmp_path / "f.json"
    path.write_text('{\n\t"model": "m",\n\t"tenants": {"acme": {"temperature": "hot"}}\n}\n')
    with pytest.raises(ConfigError, match=r"f\.json:3:38: 'tenants.acme.temperature'"):
        FileConfigProvider(path)


async def test_unknown_keys_are_kept_with_a_warning(tmp_path, caplog):
    path = tmp_path / "victor.yaml"
    path.write_text(
        "temprature: 0.2\ncoding_standards: pep8\ntool_selection: {strategy: keyword, k: 3}\n"
        "tenants:\n  acme: {brand: Acme}\n"
    )
    with caplog.at_level(logging.WARNING):
        provider = FileConfigProvider(path)
    message = caplog.records[-1].getMessage()
    assert "'temprature' (did you mean 'temperature'?)" in message
    assert "'coding_standards'" in message and "'tool_selection.k'" in message
    assert "tenants.acme.'brand'" in message
    config = await provider.get_config("acme:s")
    assert config["coding_standards"] == "pep8" and config["brand"] == "Acme"


async def test_the_complete_example_file_is_valid():
    provider = FileConfigProvider(EXAMPLES / "config_complete.yaml")
    assert (await provider.get_config("acme:s"))["tool_selection"] == {
        "strategy": "hybrid",
        "max_tools": 5,
        "hybrid_alpha": 0.7,
        "pinned": ["search_docs"],
    }


# -- tenant table ---------------------------------------------------------------------------


async def check_tenant_provider(dsn_or_path, **kwargs):
    writer = TenantConfigProvider(dsn_or_path, ttl=0, **kwargs)
    reader = TenantConfigProvider(dsn_or_path, ttl=3600, **kwargs)
    try:
        assert await reader.get_config("acme:s1") == {}
        assert await reader.get_config("plain") == {}  # a session of no tenant
        await writer.set_config("acme", {"model": "acme-m", "tool_selection": {"max_tools": 3}})
        await writer.set_config("globex", {"model": "globex-m"})
        assert await writer.get_config("acme:s1") == {
            "model": "acme-m",
            "tool_selection": {"max_tools": 3},
        }
        assert await writer.get_config("globex:s1") == {"model": "globex-m"}
        # The reader cached acme's missing row: the change shows after its TTL.
        assert await reader.get_config("acme:s1") == {}
        reader.rows.invalidate()
        assert (await reader.get_config("acme:s1"))["model"] == "acme-m"
        with pytest.raises(ConfigError, match=r"tenant 'acme': 'temperature': .*'hot'"):
            await writer.set_config("acme", {"temperature": "hot"})
        assert (await writer.get_config("acme:s1"))["model"] == "acme-m"
        await writer.delete_config("globex")
        assert await writer.get_config("globex:s1") == {}
    finally:
        await writer.aclose()
        await reader.aclose()


async def test_tenant_config_provider_on_sqlite(tmp_path):
    await check_tenant_provider(tmp_path / "tenants.db")


async def test_tenant_config_provider_rejects_a_wrong_row_and_survives_an_outage(tmp_path):
    path = tmp_path / "tenants.db"
    provider = TenantConfigProvider(path, ttl=0)
    await provider.set_config("acme", {"model": "acme-m"})
    assert (await provider.get_config("acme:s"))["model"] == "acme-m"
    with sqlite3.connect(path) as conn:  # written behind Victor's back
        conn.execute('UPDATE tenant_configs SET config = \'{"max_tokens": "many"}\'')
        conn.execute("INSERT INTO tenant_configs VALUES ('globex', '{oops', 0)")
    conn.close()
    with pytest.raises(
        ConfigError, match=rf"tenant_configs in {path}, tenant 'acme': 'max_tokens'"
    ):
        await provider.get_config("acme:s")
    with pytest.raises(ConfigError, match="tenant 'globex': invalid JSON"):
        await provider.get_config("globex:s")
    # The coordinator does not skip a wrong row: the turn fails, naming it.
    coordinator = ConfigCoordinator(providers=[provider])
    with pytest.raises(ConfigError, match="'max_tokens'"):
        await coordinator.load_config("acme:s")
    with sqlite3.connect(path) as conn:
        conn.execute('UPDATE tenant_configs SET config = \'{"model": "again"}\'')
    conn.close()
    assert (await provider.get_config("acme:s"))["model"] == "again"
    path.unlink()
    path.mkdir()  # the database cannot be opened any more: the last row read is served
    assert (await provider.get_config("acme:s"))["model"] == "again"
    with pytest.raises(sqlite3.OperationalError):  # a tenant never read: nothing to serve
        await provider.get_config("initech:s")
    assert await coordinator.load_config("initech:s") == {}  # logged and skipped


@pytest.mark.postgres
async def test_tenant_config_provider_on_postgresql(postgres_dsn, pg_schema):
    import asyncpg

    await check_tenant_provider(postgres_dsn, schema=pg_schema)
    conn = await asyncpg.connect(postgres_dsn)
    try:
        kind = await conn.fetchval(
            "SELECT data_type FROM information_schema.columns WHERE table_schema = $1 "
            "AND table_name = 'tenant_configs' AND column_name = 'config'",
            pg_schema,
        )
        assert kind == "jsonb"
    finally:
        await conn.close()


def test_tenant_table_names_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="table 'x; drop' must be a plain SQL identifier"):
        TenantConfigProvider(tmp_path / "t.db", table="x; drop")
