"""``victor serve``'s configuration: one YAML file, environment variables over it.

```yaml
server:
  host: 127.0.0.1            # VICTOR_SERVER_HOST
  port: 8000                 # VICTOR_SERVER_PORT
  keys: keys.db              # a SQLite file or postgresql://... (default <data_dir>/keys.db)
  redis: redis://127.0.0.1:6379/0   # rpm/tpm shared between processes
  models: [gpt-4o-mini]      # the models clients may ask for (default: any)
  max_body_bytes: 4194304
  require_keys: false        # refuse to start without an API key
  key_cache_seconds: 1.0     # a revocation or another process's spend is seen within it
  dashboard: true            # the live analytics page at /dashboard (VICTOR_SERVER_DASHBOARD)
  dashboard_token: s3cret    # what the page sends first; required with API keys or off loopback
orchestrator:
  provider: openai           # openai | anthropic | simulated (VICTOR_PROVIDER)
  model: gpt-4o-mini         # VICTOR_MODEL
  base_url: http://localhost:11434/v1   # an OpenAI-compatible server (or OPENAI_BASE_URL)
  simulated: {latency_ms: 200, seed: 1} # SimulatedProvider's options
  session_store: postgresql://...       # sqlite (default) | memory | a DSN
  analytics: postgresql://...           # events to PostgreSQL (default: analytics.db)
  system_prompt: You are helpful.
  tools: ["my_package.tools:get_weather"]   # import paths: a tool, a function or a list
  tool_entry_points: [my_package.victor_tools]  # entry point groups of tools
  mcp_servers:                          # tools of MCP servers, connected at start
    - {command: python, args: [weather_server.py], prefix: ""}
    - {url: "http://127.0.0.1:9000/mcp", headers: {Authorization: Bearer t}}
  session_config: victor.yaml           # the session config file (tenants, sessions)
  experiments: experiments.yaml         # its running experiment assigns variants
  assignment_table: postgresql://...    # keeps assignments sticky (SQLite path or DSN)
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from victor.errors import ConfigError

__all__ = ["OrchestratorSpec", "ServeConfig", "ServerSettings", "load_serve_config"]

LOOPBACK = ("127.0.0.1", "::1", "localhost")


class _EnvFirst(BaseSettings):
    """Settings whose environment variables override the values of the file."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (env_settings, init_settings)


class ServerSettings(_EnvFirst):
    model_config = SettingsConfigDict(env_prefix="VICTOR_SERVER_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    keys: str | None = None
    redis: str | None = None
    models: list[str] | None = None
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    require_keys: bool = False
    rate_limit_fail_open: bool = True
    key_cache_seconds: float = Field(default=1.0, ge=0)
    graceful_timeout: float = Field(default=30.0, gt=0)
    dashboard: bool = True
    dashboard_token: str | None = None


class SimulatedOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int | None = 0
    latency_ms: float = Field(default=0.0, ge=0)
    latency_sigma: float = Field(default=0.35, ge=0)
    output_tokens: int = Field(default=60, ge=1)
    error_rate: float = Field(default=0.0, ge=0, le=1)
    tool_call_rate: float = Field(default=0.6, ge=0, le=1)


class MCPServerSpec(BaseModel):
    """An MCP server whose tools the orchestrator offers: a command (stdio) or a URL."""

    model_config = ConfigDict(extra="forbid")

    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] | None = None
    url: str | None = None
    headers: dict[str, str] | None = None
    prefix: str = ""

    @model_validator(mode="after")
    def _one_target(self) -> MCPServerSpec:
        if (self.command is None) == (self.url is None):
            raise ValueError("give either command (stdio) or url (streamable HTTP)")
        return self


class OrchestratorSpec(_EnvFirst):
    model_config = SettingsConfigDict(env_prefix="VICTOR_", extra="forbid")

    provider: Literal["openai", "anthropic", "simulated"] | None = None
    model: str | None = None
    base_url: str | None = None
    simulated: SimulatedOptions = Field(default_factory=SimulatedOptions)
    session_store: str | None = None
    system_prompt: str | None = None
    tools: list[str] = Field(default_factory=list)
    tool_entry_points: list[str] = Field(default_factory=list)
    mcp_servers: list[MCPServerSpec] = Field(default_factory=list)
    analytics: str | None = None
    session_config: Path | None = None
    experiments: Path | None = None
    assignment_table: str | None = None


class ServeConfig(BaseModel):
    server: ServerSettings
    orchestrator: OrchestratorSpec
    source: Path | None = None


def _section(data: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    value = data.get(name) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {name!r} must be a mapping")
    return value


def _relative(base: Path, value: Any) -> Any:
    if isinstance(value, str) and value and not Path(value).is_absolute():
        return str(base / value)
    return value


def load_serve_config(path: str | Path | None = None, **server: Any) -> ServeConfig:
    """The server's config: the file (if any), environment variables over it, then
    ``server`` (the command line's flags) over both."""
    source = "the environment"
    data: dict[str, Any] = {}
    file = Path(path) if path is not None else None
    if file is not None:
        import yaml

        source = str(file)
        try:
            loaded = yaml.safe_load(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{file}: config file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{file}: cannot read the config file: {exc}") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else str(file)
            problem = getattr(exc, "problem", None) or "cannot parse it"
            raise ConfigError(f"{where}: invalid YAML: {problem}") from None
        data = loaded or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{file}: the top level must be a mapping")
        unknown = sorted(set(data) - {"server", "orchestrator"})
        if unknown:
            raise ConfigError(
                f"{file}: unknown sections {', '.join(unknown)} (accepted: server, orchestrator)"
            )
    server_data = _section(data, "server", file) if file else {}
    spec_data = _section(data, "orchestrator", file) if file else {}
    if file is not None:  # paths in the file are relative to it
        for key in ("session_config", "experiments"):
            spec_data[key] = _relative(file.parent, spec_data.get(key))
        if server_data.get("keys") and not str(server_data["keys"]).startswith("postgres"):
            server_data["keys"] = _relative(file.parent, server_data["keys"])
    try:
        settings = ServerSettings(**server_data)
        spec = OrchestratorSpec(**spec_data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{source}: {where}: {first['msg']}") from None
    flags = {name: value for name, value in server.items() if value is not None}
    if flags:
        settings = settings.model_copy(update=flags)
    return ServeConfig(server=settings, orchestrator=spec, source=file)
