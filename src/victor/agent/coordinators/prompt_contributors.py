"""The base of prompt contributors and the built-in ones: a fixed text, a project file,
a per-tenant template in a database table."""

from __future__ import annotations

import asyncio
import logging
import string
import time
from collections.abc import Hashable
from pathlib import Path

from victor.errors import ConfigError
from victor.protocols import IPromptContributor, PromptContext

logger = logging.getLogger(__name__)

__all__ = [
    "BasePromptContributor",
    "FileContributor",
    "StaticContributor",
    "TenantPromptContributor",
]


class BasePromptContributor(IPromptContributor):
    """A contributor with a priority and an optional cache.

    Set ``cache_ttl`` (seconds) to reuse a contribution for the same tenant and
    :meth:`cache_key` (by default, the tenant alone): useful when it comes from a file
    or a database. The tenant is always part of the key, so one tenant's contribution
    is never served to another.
    """

    cache_ttl: float | None = None

    def __init__(self, priority: int = 0) -> None:
        self._priority = priority

    def priority(self) -> int:
        return getattr(self, "_priority", 0)

    def cache_key(self, context: PromptContext) -> Hashable:
        """What, besides the tenant, the contribution depends on."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(priority={self.priority()})"


class StaticContributor(BasePromptContributor):
    """The same text in every system prompt (a policy, a persona)."""

    def __init__(self, text: str, priority: int = 0) -> None:
        super().__init__(priority)
        self.text = text

    async def get_contribution(self, context: PromptContext) -> str:
        return self.text


class FileContributor(BasePromptContributor):
    """A file's text, such as a project's ``.victor/standards.md``.

    The file is read when the contributor is made, then looked at (off the event loop)
    at most once per ``check_interval`` seconds and read again only when it changed.
    A missing file raises :class:`ConfigError` when the contributor is made, unless
    ``optional=True`` (it then contributes nothing until it appears). When the file
    later goes away or cannot be read, its last text stays in use (logged once).
    """

    def __init__(
        self,
        path: str | Path,
        priority: int = 0,
        *,
        check_interval: float = 1.0,
        optional: bool = False,
    ) -> None:
        super().__init__(priority)
        self.path = Path(path)
        self.check_interval = check_interval
        self.optional = optional
        self.reads = 0  # how many times the file was read (it is not, when unchanged)
        self._stamp: tuple[int, int] | None = None
        self._text = ""
        self._error: str | None = None
        self._checking = False
        self._checked = time.monotonic()
        try:
            self._refresh()
        except FileNotFoundError:
            if not optional:
                raise ConfigError(f"{self.path}: prompt file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{self.path}: cannot read the prompt file: {exc}") from None

    def __repr__(self) -> str:
        return f"FileContributor({str(self.path)!r}, priority={self.priority()})"

    def _refresh(self) -> None:
        stat = self.path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self._text = self.path.read_text(encoding="utf-8")
            self._stamp = stamp
            self.reads += 1

    async def _check(self) -> None:
        self._checked = time.monotonic()
        self._checking = True
        try:
            await asyncio.to_thread(self._refresh)
        except FileNotFoundError:
            if self.optional:
                self._text, self._stamp = "", None
                return
            self._note(f"{self.path}: prompt file not found; keeping its last text")
        except (OSError, UnicodeDecodeError) as exc:
            self._note(f"{self.path}: cannot read the prompt file ({exc}); keeping its last text")
        else:
            self._error = None
        finally:
            self._checking = False

    def _note(self, problem: str) -> None:
        if problem != self._error:
            logger.error("%s", problem)
            self._error = problem

    async def get_contribution(self, context: PromptContext) -> str:
        if not self._checking and time.monotonic() - self._checked >= self.check_interval:
            await self._check()
        return self._text


class TenantPromptContributor(BasePromptContributor):
    """The turn's tenant's template from a ``tenant_prompt_templates`` table
    (``tenant_id``, ``template``) in a SQLite file or PostgreSQL (a ``postgresql://``
    DSN; asyncpg), created on first use; a tenant without a row contributes nothing.

    Templates may use ``$name`` or ``${name}`` for any key of the
    :class:`~victor.protocols.PromptContext` (``$tenant_id``, ``$model``, config keys);
    unknown names are left as written. Rows are cached ``ttl`` seconds per process;
    when the database is down, the last template read is used (logged).
    """

    def __init__(
        self,
        dsn_or_path: str | Path,
        priority: int = 0,
        *,
        ttl: float = 60.0,
        table: str = "tenant_prompt_templates",
        schema: str = "public",
    ) -> None:
        from victor.agent.coordinators.tenant_table import TenantTable

        super().__init__(priority)
        self.rows = TenantTable(dsn_or_path, table=table, column="template", ttl=ttl, schema=schema)
        self._templates: dict[str, tuple[str, string.Template]] = {}

    def __repr__(self) -> str:
        return f"TenantPromptContributor({self.rows.source}, priority={self.priority()})"

    async def get_contribution(self, context: PromptContext) -> str:
        tenant = context.tenant_id
        if tenant is None:
            return ""
        text = await self.rows.get(tenant)
        if not text:
            return ""
        compiled = self._templates.get(tenant)
        if compiled is None or compiled[0] != text:
            compiled = (text, string.Template(text))
            self._templates[tenant] = compiled
        return compiled[1].safe_substitute(context)

    async def set_template(self, tenant_id: str, template: str) -> None:
        """Store a tenant's template (other processes see it within their ``ttl``)."""
        await self.rows.put(tenant_id, template)

    async def delete_template(self, tenant_id: str) -> None:
        await self.rows.delete(tenant_id)

    async def aclose(self) -> None:
        await self.rows.aclose()
