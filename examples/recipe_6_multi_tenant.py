"""Recipe 6: multi-tenant configuration -- an orchestrator per tenant, kept apart.

Runs offline (a scripted model; sessions and tenant tables in SQLite):

    python examples/recipe_6_multi_tenant.py

Each tenant's config comes from the ``tenant_configs`` table (cached with a TTL) over a
shared file; its prompt from ``tenant_prompt_templates``. ``MultiTenantOrchestrator``
makes a tenant's orchestrator on its first turn, keeps at most ``max_tenants`` open
(closing the least recently used), and scopes every session to its tenant: a tenant
cannot read or continue another's conversation, even with a guessed session id. For
several processes, point the tables and the session store at PostgreSQL
(``postgresql://...`` DSNs) instead.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

from victor import MultiTenantOrchestrator
from victor.agent.coordinators import ConfigCoordinator, PromptCoordinator
from victor.agent.coordinators.config_coordinator import (
    FileConfigProvider,
    TenantConfigProvider,
)
from victor.agent.coordinators.prompt_coordinator import TenantPromptContributor
from victor.agent.orchestrator import AgentOrchestrator
from victor.config.settings import Settings
from victor.errors import TenantMismatchError
from victor.providers import ScriptedProvider


async def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="victor-recipe-6-"))
    os.environ.setdefault("VICTOR_DATA_DIR", str(work / "data"))
    shared = work / "victor.yaml"
    shared.write_text("model: claude-sonnet-4-5\ntemperature: 0.3\n")
    tenants_db = work / "tenants.db"

    tenant_configs = TenantConfigProvider(tenants_db, ttl=60)
    await tenant_configs.set_config("acme", {"model": "claude-opus-4-5", "max_tokens": 1024})
    await tenant_configs.set_config("globex", {"temperature": 0.0})
    templates = TenantPromptContributor(tenants_db, priority=10)
    await templates.set_template("acme", "You are Acme's assistant ($model).")
    await templates.set_template("globex", "You are Globex's assistant.")

    config = ConfigCoordinator(providers=[FileConfigProvider(shared), tenant_configs])
    prompts = PromptCoordinator(contributors=[templates])

    def factory(tenant_id: str, tenant_config: dict[str, Any]) -> AgentOrchestrator:
        print(f"  (orchestrator for {tenant_id}: {tenant_config})")
        return AgentOrchestrator(
            settings=Settings(),  # every tenant's sessions in the same SQLite file
            provider=ScriptedProvider([f"Hello from {tenant_id}'s agent."], cycle=True),
            model=tenant_config.get("model"),
            _config_coordinator=config,
            _prompt_coordinator=prompts,
        )

    async with MultiTenantOrchestrator(factory, config_coordinator=config, max_tenants=2) as multi:
        for tenant in ("acme", "globex", "acme"):
            response = await multi.chat("Hi!", "support-1", tenant_id=tenant)
            print(f"{response.session_id}: {response.content} [model {response.model}]")

        # Isolation: globex guesses acme's session id.
        try:
            await multi.history("acme:support-1", tenant_id="globex")
        except TenantMismatchError as exc:
            print("refused:", exc)
        print("globex's sessions:", await multi.list_sessions(tenant_id="globex"))

        # A third tenant: the least recently used orchestrator (acme's: globex's was
        # used since) is closed, once its turns are over.
        await multi.chat("Hi!", "support-1", tenant_id="initech")
        print("open orchestrators:", multi.tenants)
    await tenant_configs.aclose()
    await templates.aclose()


if __name__ == "__main__":
    asyncio.run(main())
