"""The orchestrator, key store and app that ``victor serve`` runs, made from its config."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from importlib.metadata import entry_points
from typing import Any

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from victor.agent.coordinators.config_coordinator import (
    ConfigCoordinator,
    EnvironmentConfigProvider,
    FileConfigProvider,
)
from victor.agent.orchestrator import AgentOrchestrator
from victor.config.settings import Settings
from victor.errors import ConfigError
from victor.protocols import IConfigProvider, IProvider
from victor.server.app import create_app
from victor.server.keys import KeyStore, key_store_from_url
from victor.server.settings import LOOPBACK, MCPServerSpec, OrchestratorSpec, ServeConfig

logger = logging.getLogger(__name__)

__all__ = ["build_app", "build_orchestrator", "build_provider", "key_store_for", "load_tools"]


def build_provider(spec: OrchestratorSpec, settings: Settings) -> IProvider:
    options = {"timeout": settings.request_timeout, "max_retries": settings.max_retries}
    if spec.provider == "simulated":
        from victor.providers import SimulatedProvider

        return SimulatedProvider(**spec.simulated.model_dump())
    if spec.provider == "anthropic":
        from victor.providers import AnthropicProvider

        return AnthropicProvider(**options)
    if spec.provider == "openai" or spec.base_url:
        from victor.providers import OpenAIProvider

        return OpenAIProvider(base_url=spec.base_url, **options)
    from victor.providers import provider_from_environment

    return provider_from_environment(**options)


def _import(path: str) -> Any:
    module, _, attribute = path.partition(":")
    if not module or not attribute:
        raise ConfigError(f"tool {path!r}: expected 'module:attribute'")
    try:
        value: Any = importlib.import_module(module)
        for part in attribute.split("."):
            value = getattr(value, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"tool {path!r}: cannot import it ({exc})") from None
    return value


def load_tools(spec: OrchestratorSpec) -> list[Any]:
    """The tools named by import paths and entry point groups (each a tool, a function
    or a list of them)."""
    found: list[Any] = [_import(path) for path in spec.tools]
    for group in spec.tool_entry_points:
        for entry in entry_points(group=group):
            found.append(entry.load())
    tools: list[Any] = []
    for item in found:
        tools.extend(item if isinstance(item, list | tuple) else [item])
    return tools


def _config_coordinator(spec: OrchestratorSpec) -> ConfigCoordinator:
    providers: list[IConfigProvider] = [EnvironmentConfigProvider()]
    if spec.session_config is not None:
        providers.append(FileConfigProvider(spec.session_config))
    if spec.experiments is None:
        return ConfigCoordinator(providers=providers)
    from victor.agent.coordinators.experiment_coordinator import ExperimentConfigCoordinator
    from victor.experiments.loading import load_experiments

    running = [e for e in load_experiments(spec.experiments) if e.status == "running"]
    if len(running) != 1:
        raise ConfigError(
            f"{spec.experiments}: a server runs one experiment at a time; "
            f"{len(running)} are running"
        )
    table = None
    if spec.assignment_table:
        if spec.assignment_table.startswith(("postgresql://", "postgres://")):
            from victor.experiments.table import PostgresAssignmentTable

            table = PostgresAssignmentTable(spec.assignment_table)
        else:
            from victor.experiments.table import SQLiteAssignmentTable

            table = SQLiteAssignmentTable(spec.assignment_table)
    return ExperimentConfigCoordinator(running[0], providers, table=table)


def build_orchestrator(spec: OrchestratorSpec) -> AgentOrchestrator:
    settings = Settings(session_store=spec.session_store) if spec.session_store else Settings()
    coordinator = _config_coordinator(spec)
    analytics = None
    if spec.analytics:  # shared by every process; else the embedded SQLite file
        if not spec.analytics.startswith(("postgresql://", "postgres://")):
            raise ConfigError(f"analytics: expected a postgresql:// DSN, not {spec.analytics!r}")
        from victor.agent.coordinators.analytics_coordinator import AnalyticsCoordinator
        from victor.analytics.exporters.postgres import PostgreSQLAnalyticsExporter

        analytics = AnalyticsCoordinator(
            [PostgreSQLAnalyticsExporter(spec.analytics)],
            outbox_path=settings.data_dir / "analytics-outbox.db",
        )
    orchestrator = AgentOrchestrator(
        settings=settings,
        provider=build_provider(spec, settings),
        model=spec.model,
        tools=load_tools(spec),
        system_prompt=spec.system_prompt,
        _config_coordinator=coordinator,
        _analytics_coordinator=analytics,
    )
    if hasattr(coordinator, "analytics"):  # an experiment announces its assignments
        coordinator.analytics = orchestrator.analytics_coordinator
    return orchestrator


async def connect_mcp(
    orchestrator: AgentOrchestrator, specs: list[MCPServerSpec]
) -> list[Callable[[], Awaitable[None]]]:
    """Connect each MCP server and register its tools; the closers of the connections."""
    from victor.mcp import MCPServerTools

    closers: list[Callable[[], Awaitable[None]]] = []
    try:
        for spec in specs:
            if spec.command is not None:
                server = MCPServerTools.stdio(
                    spec.command, spec.args, env=spec.env, prefix=spec.prefix
                )
            else:
                assert spec.url is not None
                server = MCPServerTools.http(spec.url, headers=spec.headers, prefix=spec.prefix)
            closers.append(server.aclose)
            orchestrator.register_tools(await server.list_tools())
    except BaseException:
        for close in closers:
            await close()
        raise
    return closers


def key_store_for(config: ServeConfig) -> KeyStore:
    url = config.server.keys or str(Settings().data_dir / "keys.db")
    return key_store_from_url(url)


async def build_app(
    config: ServeConfig, extra_routes: Sequence[BaseRoute] = ()
) -> tuple[Starlette, bool]:
    """The app and whether it requires API keys. Without keys the server is only for
    this machine: a host other than loopback is refused. ``extra_routes`` go to
    :func:`create_app` (where the dashboard's page and WebSocket are to be mounted)."""
    server = config.server
    key_store = key_store_for(config)
    try:
        active = await key_store.count_active()
    except Exception:
        await key_store.aclose()
        raise
    auth = active > 0
    if not auth:
        await key_store.aclose()
        if server.require_keys:
            raise ConfigError(
                "server.require_keys is set but no API key exists: victor keys create"
            )
        if server.host not in LOOPBACK:
            raise ConfigError(
                f"no API key exists, so the server runs without authentication and listens "
                f"on loopback only, not {server.host}: create a key (victor keys create) first"
            )
    orchestrator = build_orchestrator(config.orchestrator)
    try:
        closers = await connect_mcp(orchestrator, config.orchestrator.mcp_servers)
    except BaseException:
        await orchestrator.aclose()
        raise
    dashboard = _dashboard(config, orchestrator, auth)
    if dashboard is not None:
        extra_routes = [*extra_routes, *dashboard.routes()]
        closers.append(dashboard.aclose)
    app = create_app(
        orchestrator,
        key_store=key_store if auth else None,
        auth=auth,
        redis_url=server.redis,
        models=server.models,
        max_body_bytes=server.max_body_bytes,
        rate_limit_fail_open=server.rate_limit_fail_open,
        key_cache_seconds=server.key_cache_seconds,
        on_startup=[dashboard.start] if dashboard is not None else [],
        on_shutdown=closers,
        extra_routes=extra_routes,
    )
    return app, auth


def _dashboard(config: ServeConfig, orchestrator: AgentOrchestrator, auth: bool) -> Any:
    """The live analytics page over the orchestrator's events, or None when it is off.

    It shows every tenant's traffic, so it needs its own token whenever the API needs
    keys or listens beyond loopback; without one it stays off, and says so. With Redis
    configured, each process's page shows the events of all of them."""
    server = config.server
    if not server.dashboard:
        return None
    if not server.dashboard_token and (auth or server.host not in LOOPBACK):
        logger.warning(
            "dashboard off: set server.dashboard_token (VICTOR_SERVER_DASHBOARD_TOKEN) to "
            "serve it beside an API that needs keys or listens beyond loopback"
        )
        return None
    from victor.dashboard import Dashboard

    store: str | None = config.orchestrator.analytics
    if store is None and orchestrator.settings.enable_analytics:
        store = str(orchestrator.settings.data_dir / "analytics.db")
    dashboard = Dashboard(store, token=server.dashboard_token, redis_url=server.redis)
    orchestrator.analytics_coordinator.exporters.append(dashboard.exporter())
    return dashboard
