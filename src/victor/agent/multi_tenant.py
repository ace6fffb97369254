"""``MultiTenantOrchestrator``: one orchestrator per tenant, made on first use."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from victor.agent.coordinators.config_coordinator import ConfigCoordinator
from victor.agent.orchestrator import AgentOrchestrator
from victor.protocols import ChatResponse, Message, StreamChunk
from victor.protocols.tenancy import SEPARATOR, scoped_session_id

logger = logging.getLogger(__name__)

__all__ = ["MultiTenantOrchestrator", "OrchestratorFactory"]

# Makes a tenant's orchestrator from the tenant id and the tenant's config.
OrchestratorFactory = Callable[
    [str, dict[str, Any]], AgentOrchestrator | Awaitable[AgentOrchestrator]
]


@dataclass(slots=True)
class _Tenant:
    orchestrator: AgentOrchestrator
    users: int = 0  # turns and streams in flight
    evicted: bool = False


class MultiTenantOrchestrator:
    """Serves many tenants, each through its own :class:`AgentOrchestrator`.

    A tenant's orchestrator is made on its first turn by ``factory(tenant_id, config)``,
    ``config`` being the tenant's config from ``config_coordinator`` (its ``tenants:``
    section of a file, its ``tenant_configs`` row...). At most ``max_tenants`` are open:
    past that, the least recently used is closed, once the turns it is running end.

    Every turn, history read and listing is scoped to the tenant it names (one rule:
    :mod:`victor.protocols.tenancy`), so a tenant cannot read or continue another's
    session, guessed id or not: ``acme:s1`` asked for by ``globex`` raises
    :class:`~victor.errors.TenantMismatchError`, and a plain ``s1`` is ``globex:s1``.

    The factory decides what tenants share: an orchestrator closes what it was given
    (provider, stores), so give each tenant its own, or components that survive a
    close (the SQLite store of ``Settings()`` counts its users; database-backed config
    providers and prompt contributors reconnect).
    """

    def __init__(
        self,
        factory: OrchestratorFactory,
        *,
        config_coordinator: ConfigCoordinator | None = None,
        max_tenants: int = 100,
    ) -> None:
        if max_tenants < 1:
            raise ValueError("max_tenants must be at least 1")
        self.factory = factory
        self.config_coordinator = config_coordinator
        self.max_tenants = max_tenants
        self._tenants: OrderedDict[str, _Tenant] = OrderedDict()
        self._making: dict[str, asyncio.Lock] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def tenants(self) -> list[str]:
        """The tenants with an open orchestrator, least recently used first."""
        return list(self._tenants)

    async def tenant_config(self, tenant_id: str) -> dict[str, Any]:
        """The tenant's config (no session's overrides)."""
        if self.config_coordinator is None:
            return {}
        return await self.config_coordinator.load_config(scoped_session_id("", tenant_id))

    async def _acquire(self, tenant_id: str) -> _Tenant:
        if self._closed:
            raise RuntimeError("the multi-tenant orchestrator is closed")
        if not isinstance(tenant_id, str) or not tenant_id or SEPARATOR in tenant_id:
            raise ValueError(f"tenant_id must be a non-empty string without {SEPARATOR!r}")
        tenant = self._tenants.get(tenant_id)
        if tenant is None:
            lock = self._making.setdefault(tenant_id, asyncio.Lock())
            async with lock:  # one orchestrator per tenant, however many turns arrive
                tenant = self._tenants.get(tenant_id)
                if tenant is None:
                    tenant = await self._make(tenant_id)
        self._tenants.move_to_end(tenant_id)
        tenant.users += 1
        return tenant

    async def _make(self, tenant_id: str) -> _Tenant:
        config = await self.tenant_config(tenant_id)
        made = self.factory(tenant_id, config)
        orchestrator = await made if inspect.isawaitable(made) else made
        if self._closed:
            await orchestrator.aclose()
            raise RuntimeError("the multi-tenant orchestrator is closed")
        tenant = _Tenant(orchestrator)
        self._tenants[tenant_id] = tenant
        while len(self._tenants) > self.max_tenants:
            evicted_id, evicted = self._tenants.popitem(last=False)
            self._making.pop(evicted_id, None)
            self._retire(evicted)
        return tenant

    def _retire(self, tenant: _Tenant) -> None:
        """Close now when idle, else when its last turn ends."""
        tenant.evicted = True
        if tenant.users == 0:
            task = asyncio.ensure_future(self._close(tenant))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    @staticmethod
    async def _close(tenant: _Tenant) -> None:
        try:
            await tenant.orchestrator.aclose()
        except Exception:
            logger.exception("error while closing a tenant's orchestrator")

    async def _release(self, tenant: _Tenant) -> None:
        tenant.users -= 1
        if tenant.evicted and tenant.users == 0:
            await self._close(tenant)

    @asynccontextmanager
    async def orchestrator(self, tenant_id: str) -> AsyncIterator[AgentOrchestrator]:
        """The tenant's orchestrator, kept open while the block runs."""
        tenant = await self._acquire(tenant_id)
        try:
            yield tenant.orchestrator
        finally:
            await self._release(tenant)

    async def chat(
        self,
        message: str,
        session_id: str | None = None,
        *,
        tenant_id: str,
        config: Mapping[str, Any] | None = None,
        **overrides: Any,
    ) -> ChatResponse:
        """One turn of ``tenant_id``'s session (see :meth:`AgentOrchestrator.chat`)."""
        async with self.orchestrator(tenant_id) as orchestrator:
            return await orchestrator.chat(
                message, session_id, tenant_id=tenant_id, config=config, **overrides
            )

    async def stream(
        self,
        message: str,
        session_id: str | None = None,
        *,
        tenant_id: str,
        config: Mapping[str, Any] | None = None,
        **overrides: Any,
    ) -> AsyncIterator[StreamChunk]:
        """Like :meth:`chat`, streamed (see :meth:`AgentOrchestrator.stream`)."""
        async with self.orchestrator(tenant_id) as orchestrator:
            chunks = orchestrator.stream(
                message, session_id, tenant_id=tenant_id, config=config, **overrides
            )
            async with aclosing(chunks):
                async for chunk in chunks:
                    yield chunk

    async def history(self, session_id: str, *, tenant_id: str) -> list[Message]:
        """The messages of one of ``tenant_id``'s sessions (another tenant's is refused)."""
        async with self.orchestrator(tenant_id) as orchestrator:
            return await orchestrator.history(session_id, tenant_id=tenant_id)

    async def list_sessions(self, limit: int = 100, *, tenant_id: str) -> list[str]:
        """``tenant_id``'s session ids, the most recently updated first."""
        async with self.orchestrator(tenant_id) as orchestrator:
            return await orchestrator.list_sessions(limit, tenant_id=tenant_id)

    async def aclose(self) -> None:
        """Close every tenant's orchestrator (a busy one when its turns end)."""
        self._closed = True
        while self._tenants:
            _, tenant = self._tenants.popitem(last=False)
            self._retire(tenant)
        self._making.clear()
        if self._closing:
            await asyncio.gather(*self._closing)

    async def __aenter__(self) -> MultiTenantOrchestrator:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
