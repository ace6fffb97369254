"""The built-in config providers: environment variables, a YAML/JSON file, a tenant table.

Each checks the keys it gives against :class:`victor.config.schema.SessionConfig` when it
reads them, so a wrong value is reported where it was written: the variable, the file
with line and column, the tenant's row.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.sources import EnvSettingsSource

from victor.config.schema import (
    SECTIONS,
    SESSIONS,
    TENANTS,
    SessionConfig,
    config_problems,
    format_path,
    unknown_keys,
)
from victor.errors import ConfigError
from victor.protocols import IConfigProvider
from victor.protocols.tenancy import tenant_of

logger = logging.getLogger(__name__)

__all__ = [
    "EnvironmentConfigProvider",
    "FileConfigProvider",
    "TenantConfigProvider",
    "deep_merge",
    "merge_into",
]


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict: ``override`` wins, nested dicts (such as ``tool_selection``) merge key
    by key. Nested dicts are copied, so changing the result never changes its sources."""
    merged: dict[str, Any] = {}
    merge_into(merged, base)
    merge_into(merged, override)
    return merged


def merge_into(target: dict[str, Any], source: Mapping[str, Any]) -> None:
    """Merge ``source`` into ``target`` (see :func:`deep_merge`), copying nested dicts."""
    for key, value in source.items():
        if type(value) is dict or isinstance(value, Mapping):
            current = target.get(key)
            if type(current) is not dict:
                current = target[key] = {}
            merge_into(current, value)
        else:
            target[key] = value


# -- environment --------------------------------------------------------------------------


class _EnvironmentKeys(BaseSettings, SessionConfig):
    """The schema's keys as pydantic-settings reads them from the environment."""

    model_config = SettingsConfigDict(
        env_prefix="VICTOR_", env_nested_delimiter="__", extra="ignore", strict=False
    )


class EnvironmentConfigProvider(IConfigProvider):
    """Session config from ``VICTOR_*`` environment variables, for every session:
    ``VICTOR_TEMPERATURE=0.2``, ``VICTOR_TOOL_SELECTION__STRATEGY=hybrid`` (a double
    underscore nests). pydantic-settings reads them (JSON for whole sections:
    ``VICTOR_TOOL_SELECTION='{"strategy": "keyword"}'``); only the keys of the session
    schema are read, so ``VICTOR_DATA_DIR`` and the other :class:`Settings` stay out.

    A variable that does not parse raises :class:`ConfigError` naming it. The
    environment is read when the provider is made and by :meth:`reload`.
    """

    def __init__(self, *, priority: int = 10, prefix: str = "VICTOR_") -> None:
        self.prefix = prefix
        self._priority = priority
        self.reload()

    @property
    def source(self) -> str:
        return f"environment variables {self.prefix}*"

    def priority(self) -> int:
        return self._priority

    def _variable(self, path: tuple[str, ...]) -> str:
        return self.prefix + "__".join(path).upper()

    def reload(self) -> None:
        raw = EnvSettingsSource(_EnvironmentKeys, env_prefix=self.prefix)()
        try:
            parsed = SessionConfig.model_validate(raw, strict=False)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            path = tuple(str(p) for p in err["loc"])
            raise ConfigError(
                f"environment variable {self._variable(path)}: {err['msg']} "
                f"(got {err['input']!r:.80})"
            ) from None
        self._config = parsed.model_dump(exclude_unset=True)

    async def get_config(self, session_id: str) -> dict[str, Any]:
        return self._config


# -- file ---------------------------------------------------------------------------------


def _position(text: str, path: tuple[str, ...]) -> tuple[int, int] | None:
    """Line and column (1-based) of the value at ``path`` in a YAML or JSON text (JSON
    is read as YAML here: only to point at the place, after a check failed)."""
    import yaml

    try:
        node = yaml.compose(text.replace("\t", " "), Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    if node is None:
        return None
    mark = node.start_mark
    for part in path:
        if not isinstance(node, yaml.MappingNode):
            break
        for key_node, value_node in node.value:
            if getattr(key_node, "value", None) == part:
                node, mark = value_node, value_node.start_mark
                break
        else:
            break
    return mark.line + 1, mark.column + 1


class FileConfigProvider(IConfigProvider):
    """Session config from a YAML or JSON file (format in the README), re-read when it
    changes: the file is looked at once per ``check_interval`` seconds at most, off the
    event loop.

    Top-level keys apply to every session; ``tenants: {name: {...}}`` and ``sessions:
    {id: {...}}`` overlay them for one tenant or session. The keys Victor knows are
    checked (:class:`victor.config.schema.SessionConfig`); other keys are kept, with a
    warning naming them. A file that cannot be read, parsed or checked raises
    :class:`ConfigError` naming the file, line and column when it is first loaded; after
    a bad edit to a file that was good (or while it is being replaced), the last good
    version stays in use and the problem is logged once.
    """

    def __init__(
        self, path: str | Path, *, priority: int = 50, check_interval: float = 1.0
    ) -> None:
        self.path = Path(path)
        self._priority = priority
        self.check_interval = check_interval
        self._checked = time.monotonic()
        self._stamp: tuple[float, int] | None = None  # (mtime, size) of the loaded file
        self._data: dict[str, Any] = {}
        self._error: str | None = None
        self._reloading = False
        self._use(self._read())

    @property
    def source(self) -> str:
        return f"file {self.path}"

    def priority(self) -> int:
        return self._priority

    # -- reading and checking (plain functions: run in a worker thread on reloads) -----

    def _read(self) -> tuple[tuple[float, int], dict[str, Any]] | None:
        """The file's stamp and checked content; None when unchanged since loaded."""
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime, stat.st_size)
            if stamp == self._stamp:
                return None
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{self.path}: config file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{self.path}: cannot read the config file: {exc}") from None
        return stamp, self._parse(text)

    def _error_at(self, text: str, path: tuple[str, ...], message: str) -> ConfigError:
        where = _position(text, path)
        place = f"{self.path}:{where[0]}:{where[1]}" if where else str(self.path)
        key = f"{format_path(path)!r}: " if path else ""
        return ConfigError(f"{place}: {key}{message}")

    def _parse(self, text: str) -> dict[str, Any]:
        if self.path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                where = f"{self.path}:{mark.line + 1}:{mark.column + 1}" if mark else self.path
                problem = getattr(exc, "problem", None) or str(exc)
                raise ConfigError(f"{where}: invalid YAML: {problem}") from None
        else:
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(
                    f"{self.path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}"
                ) from None
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise self._error_at(text, (), "the top level must be a mapping of settings")
        layers: list[tuple[tuple[str, ...], Any]] = [
            ((), {k: v for k, v in data.items() if k not in SECTIONS})
        ]
        for section in SECTIONS:
            entries = data.get(section)
            if entries is None:
                continue
            if not isinstance(entries, dict):
                raise self._error_at(text, (section,), "must map names to settings")
            for name, overlay in entries.items():
                if not isinstance(overlay, dict):
                    raise self._error_at(text, (section, str(name)), "must be a mapping")
                layers.append(((section, str(name)), overlay))
        unknown = []
        for prefix, layer in layers:
            problems = config_problems(layer)
            if problems:
                path, message = problems[0]
                raise self._error_at(text, prefix + path, message)
            unknown += [".".join(prefix) + "." + k if prefix else k for k in unknown_keys(layer)]
        if unknown:
            logger.warning(
                "%s: keys Victor does not use itself, kept for coordinators and contributors: %s",
                self.path,
                ", ".join(unknown),
            )
        return data

    def _use(self, loaded: tuple[tuple[float, int], dict[str, Any]] | None) -> None:
        if loaded is None:
            return
        self._stamp, self._data = loaded
        # Tenants and sessions resolved once per load, not per turn.
        self._base = {k: v for k, v in self._data.items() if k not in SECTIONS}
        self._tenants = {
            str(name): deep_merge(self._base, overlay)
            for name, overlay in (self._data.get(TENANTS) or {}).items()
        }
        self._sessions = {str(k): v for k, v in (self._data.get(SESSIONS) or {}).items()}
        if self._error is not None:
            logger.warning("%s is good again and in use", self.path)
        self._error = None

    async def reload(self) -> None:
        """Look at the file now (off the event loop); keep the last good version when it
        is broken or missing."""
        self._checked = time.monotonic()
        self._reloading = True
        try:
            loaded = await asyncio.to_thread(self._read)
        except ConfigError as exc:
            if self._error != str(exc):
                logger.error("keeping the previous config: %s", exc)
                self._error = str(exc)
            return
        finally:
            self._reloading = False
        self._use(loaded)

    async def get_config(self, session_id: str) -> dict[str, Any]:
        if not self._reloading and time.monotonic() - self._checked >= self.check_interval:
            await self.reload()
        tenant = tenant_of(session_id)
        config = self._tenants.get(tenant, self._base) if tenant else self._base
        overlay = self._sessions.get(session_id)
        return deep_merge(config, overlay) if overlay else config


# -- tenant table -------------------------------------------------------------------------


class TenantConfigProvider(IConfigProvider):
    """Each tenant's config from a ``tenant_configs`` table (``tenant_id``, ``config``
    as a JSON object) in a SQLite file or a PostgreSQL database (``postgresql://...``
    DSN; asyncpg), created on first use. The tenant is the turn's
    (:func:`victor.protocols.tenancy.tenant_of` of the session id); sessions of no tenant
    get nothing from here.

    A tenant's row is read at most once per ``ttl`` seconds per process; when the
    database is down, the last row read keeps being used (logged). A row whose values are
    wrong raises :class:`ConfigError` naming the tenant, the key and the table.
    """

    def __init__(
        self,
        dsn_or_path: str | Path,
        *,
        ttl: float = 60.0,
        priority: int = 80,
        table: str = "tenant_configs",
        schema: str = "public",
    ) -> None:
        from victor.agent.coordinators.tenant_table import TenantTable

        self.rows = TenantTable(
            dsn_or_path, table=table, column="config", ttl=ttl, schema=schema, json_column=True
        )
        self._priority = priority
        self._parsed: dict[str, tuple[str, dict[str, Any]]] = {}  # tenant -> (text, config)

    @property
    def source(self) -> str:
        return self.rows.source

    def priority(self) -> int:
        return self._priority

    def _check(self, tenant_id: str, config: Any) -> dict[str, Any]:
        where = f"{self.source}, tenant {tenant_id!r}"
        if not isinstance(config, dict):
            raise ConfigError(f"{where}: the config must be a JSON object")
        problems = config_problems(config)
        if problems:
            path, message = problems[0]
            raise ConfigError(f"{where}: {format_path(path)!r}: {message}")
        return config

    async def get_config(self, session_id: str) -> dict[str, Any]:
        tenant = tenant_of(session_id)
        if tenant is None:
            return {}
        text = await self.rows.get(tenant)
        if text is None:
            return {}
        parsed = self._parsed.get(tenant)
        if parsed is not None and parsed[0] == text:
            return parsed[1]
        try:
            config = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"{self.source}, tenant {tenant!r}: invalid JSON: {exc}") from None
        config = self._check(tenant, config)
        self._parsed[tenant] = (text, config)
        return config

    async def set_config(self, tenant_id: str, config: Mapping[str, Any]) -> None:
        """Store a tenant's config (checked first; other processes see it within their
        ``ttl``)."""
        checked = self._check(tenant_id, dict(config))
        await self.rows.put(tenant_id, json.dumps(checked))

    async def delete_config(self, tenant_id: str) -> None:
        await self.rows.delete(tenant_id)

    async def aclose(self) -> None:
        await self.rows.aclose()
