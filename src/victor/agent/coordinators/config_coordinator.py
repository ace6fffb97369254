"""Per-session configuration: merged from providers (environment, files, databases)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from victor.agent.coordinators.config_providers import (
    EnvironmentConfigProvider,
    FileConfigProvider,
    TenantConfigProvider,
    deep_merge,
    merge_into,
)
from victor.agent.coordinators.priority import by_priority
from victor.config.schema import NAMED_CHOICES, config_problems, format_path
from victor.errors import ConfigError
from victor.protocols import IConfigProvider
from victor.protocols.tenancy import tenant_of

logger = logging.getLogger(__name__)

__all__ = [
    "ConfigCoordinator",
    "EnvironmentConfigProvider",
    "FileConfigProvider",
    "IConfigProvider",
    "TenantConfigProvider",
    "check_session_config",
    "deep_merge",
    "tenant_of",
]

OVERRIDE_SOURCE = "the turn's config override"


def source_name(provider: object) -> str:
    """How messages name a provider: its ``source`` when it has one."""
    source = getattr(provider, "source", None)
    return source if isinstance(source, str) else type(provider).__name__


class ConfigCoordinator:
    """Merges the config of every provider for a session: lower priority first, so the
    highest priority wins (nested dicts key by key), then ``config_override`` on top.

    A provider that raises is logged and left out of the turn's config (the turn goes
    on) unless ``strict=True``, where the turn fails with :class:`ConfigError`. A wrong
    value is never left out silently: it raises :class:`ConfigError` naming the key and
    where it came from (the built-in providers check what they read; the orchestrator
    checks the merged result with :func:`check_session_config`).

    Subclasses may override :meth:`load_config` entirely (an A/B test assigning variants
    does); they need not call ``__init__``.
    """

    providers: Sequence[IConfigProvider] = ()
    strict: bool = False

    def __init__(
        self, providers: Sequence[IConfigProvider] | None = None, *, strict: bool = False
    ) -> None:
        self.providers = by_priority(providers or (), "get_config", "config provider")
        self.strict = strict
        self._failing: set[int] = set()  # ids of providers whose last call raised

    def add_provider(self, provider: IConfigProvider) -> None:
        self.providers = by_priority([*self.providers, provider], "get_config", "config provider")

    async def _provider_config(
        self, provider: IConfigProvider, session_id: str
    ) -> Mapping[str, Any] | None:
        try:
            config = await provider.get_config(session_id)
            if not isinstance(config, Mapping):
                raise TypeError(f"get_config returned {type(config).__name__}, not a dict")
        except ConfigError:
            raise  # a wrong value is the turn's error, named where it was written
        except Exception as exc:
            failing = getattr(self, "_failing", set())
            if self.strict:
                raise ConfigError(
                    f"config provider {source_name(provider)} failed: {type(exc).__name__}: {exc}"
                ) from exc
            if id(provider) not in failing:  # once per outage, not once per turn
                logger.error(
                    "config provider %s failed, left out until it works again: %s: %s",
                    source_name(provider),
                    type(exc).__name__,
                    exc,
                )
                failing.add(id(provider))
            return None
        failing = getattr(self, "_failing", None)
        if failing and id(provider) in failing:
            failing.discard(id(provider))
            logger.warning("config provider %s works again", source_name(provider))
        return config

    async def load_config(
        self, session_id: str, config_override: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for provider in self.providers:
            config = await self._provider_config(provider, session_id)
            if config:
                merge_into(merged, config)
        if config_override:
            merge_into(merged, config_override)
        return merged

    async def aclose(self) -> None:
        """Close the providers that hold connections (they reconnect if used again)."""
        for provider in self.providers:
            close = getattr(provider, "aclose", None)
            if close is not None:
                try:
                    await close()
                except Exception:
                    logger.exception("error while closing %s", source_name(provider))

    async def source_of(
        self,
        session_id: str,
        path: Sequence[str],
        config_override: Mapping[str, Any] | None = None,
    ) -> str:
        """Which source gave the session's value at ``path`` (for error messages)."""
        candidates: list[tuple[str, Mapping[str, Any] | None]] = [
            (OVERRIDE_SOURCE, config_override)
        ]
        for provider in reversed(self.providers):  # the highest priority first
            try:
                config = await provider.get_config(session_id)
            except Exception:
                config = None
            candidates.append((source_name(provider), config))
        for name, config in candidates:
            node: Any = config
            for part in path:
                node = node.get(part) if isinstance(node, Mapping) else None
            if node is not None:
                return name
        return f"{type(self).__name__}.load_config"


def _has(config: Mapping[str, Any], path: Sequence[str]) -> bool:
    node: Any = config
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


async def check_session_config(
    coordinator: object,
    session_id: str,
    config: Mapping[str, Any],
    *,
    config_override: Mapping[str, Any] | None = None,
    choices: Callable[[], Mapping[tuple[str, ...], Collection[str]]] | None = None,
) -> None:
    """Raise :class:`ConfigError` naming each wrong key of a session's merged config and
    the source it came from. ``choices`` gives the accepted names of keys that name a
    registered strategy; it is called only when the config sets one of them."""
    names = None
    if choices is not None and any(_has(config, path) for path in NAMED_CHOICES):
        names = choices()
    problems = config_problems(config, names)
    if not problems:
        return
    parts = []
    for path, message in problems:
        if isinstance(coordinator, ConfigCoordinator):
            source = await coordinator.source_of(session_id, path, config_override)
        else:
            source = f"{type(coordinator).__name__}.load_config"
        parts.append(f"{format_path(path)!r}: {message}, from {source}")
    raise ConfigError(f"invalid config for session {session_id!r}: " + "; ".join(parts))
