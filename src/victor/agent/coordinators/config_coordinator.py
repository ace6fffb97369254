"""Per-session configuration: merged from providers (environment, files, databases)."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from victor.errors import ConfigError
from victor.protocols import IConfigProvider
from victor.protocols.tenancy import tenant_of

logger = logging.getLogger(__name__)

__all__ = [
    "ConfigCoordinator",
    "EnvironmentConfigProvider",
    "FileConfigProvider",
    "IConfigProvider",
    "deep_merge",
    "tenant_of",
]


def deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` wins; nested dicts (such as ``tool_selection``) merge key by key."""
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = value
    return merged


def _parse_env_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


class EnvironmentConfigProvider(IConfigProvider):
    """Config from environment variables: ``VICTOR_CONFIG_MODEL=gpt-4o`` sets ``model``;
    a double underscore nests (``VICTOR_CONFIG_TOOL_SELECTION__STRATEGY=hybrid``).
    Values are parsed as JSON when they can be (numbers, booleans, lists)."""

    def __init__(
        self,
        prefix: str = "VICTOR_CONFIG_",
        *,
        priority: int = 10,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.prefix = prefix
        self._priority = priority
        self._environ = environ
        self.reload()

    def priority(self) -> int:
        return self._priority

    def reload(self) -> None:
        environ = os.environ if self._environ is None else self._environ
        config: dict[str, Any] = {}
        for name, raw in environ.items():
            if not name.startswith(self.prefix) or len(name) == len(self.prefix):
                continue
            path = name[len(self.prefix) :].lower().split("__")
            node = config
            for part in path[:-1]:
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    raise ConfigError(f"environment variable {name}: {part!r} is not a section")
            node[path[-1]] = _parse_env_value(raw)
        self._config = config

    async def get_config(self, session_id: str) -> dict[str, Any]:
        return dict(self._config)


class FileConfigProvider(IConfigProvider):
    """Config from a JSON or YAML file, re-read when the file changes (looked at once
    per ``check_interval`` seconds at most).

    Top-level keys apply to every session; ``tenants: {name: {...}}`` and
    ``sessions: {id: {...}}`` overlay them for one tenant or session. A file that cannot
    be parsed raises :class:`ConfigError` naming the file and line; after a bad edit to a
    file that was good, the last good version stays in use (logged).
    """

    def __init__(
        self, path: str | Path, *, priority: int = 50, check_interval: float = 1.0
    ) -> None:
        self.path = Path(path)
        self._priority = priority
        self.check_interval = check_interval  # seconds between looks at the file
        self._checked = 0.0
        self._mtime: float | None = None
        self._data: dict[str, Any] = {}
        self._error: str | None = None
        self._load(initial=True)

    def priority(self) -> int:
        return self._priority

    def _parse(self, text: str) -> dict[str, Any]:
        if self.path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                where = f"{self.path}:{mark.line + 1}" if mark else str(self.path)
                raise ConfigError(f"{where}: invalid YAML: {exc}") from None
        else:
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{self.path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ConfigError(f"{self.path}: the top level must be a mapping of settings")
        for section in ("tenants", "sessions"):
            value = data.get(section)
            if value is not None and not (
                isinstance(value, dict) and all(isinstance(v, dict) for v in value.values())
            ):
                raise ConfigError(f"{self.path}: '{section}' must map names to settings")
        return data

    def _load(self, initial: bool = False) -> None:
        try:
            mtime = self.path.stat().st_mtime
            if mtime == self._mtime:
                return
            text = self.path.read_text(encoding="utf-8")
            data = self._parse(text)
        except (OSError, UnicodeDecodeError, ConfigError) as exc:
            if initial:
                if isinstance(exc, FileNotFoundError):
                    raise ConfigError(f"{self.path}: config file not found") from None
                if isinstance(exc, ConfigError):
                    raise
                raise ConfigError(f"{self.path}: cannot read the config file: {exc}") from None
            # A file being replaced (an editor's atomic save, a mounted ConfigMap swap) or
            # a bad edit: keep serving the last good version.
            if self._error != str(exc):
                logger.error("keeping the previous config of %s: %s", self.path, exc)
                self._error = str(exc)
            return
        self._data = data
        self._mtime = mtime
        self._error = None

    async def get_config(self, session_id: str) -> dict[str, Any]:
        now = time.monotonic()
        if now - self._checked >= self.check_interval:
            self._checked = now
            self._load()
        data = self._data
        config = {k: v for k, v in data.items() if k not in ("tenants", "sessions")}
        tenant = tenant_of(session_id)
        if tenant and tenant in (data.get("tenants") or {}):
            config = deep_merge(config, data["tenants"][tenant])
        if session_id in (data.get("sessions") or {}):
            config = deep_merge(config, data["sessions"][session_id])
        return config


class ConfigCoordinator:
    """Merges the config of every provider for a session: lower priority first, so the
    highest priority wins, then ``config_override`` on top.

    Subclasses may override :meth:`load_config` entirely (an A/B test assigning variants
    does); they need not call ``__init__``.
    """

    providers: Sequence[IConfigProvider] = ()

    def __init__(self, providers: Sequence[IConfigProvider] | None = None) -> None:
        self.providers = sorted(providers or (), key=lambda p: p.priority())

    def add_provider(self, provider: IConfigProvider) -> None:
        self.providers = sorted([*self.providers, provider], key=lambda p: p.priority())

    async def load_config(
        self, session_id: str, config_override: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for provider in self.providers:
            merged = deep_merge(merged, await provider.get_config(session_id))
        if config_override:
            merged = deep_merge(merged, config_override)
        return merged
