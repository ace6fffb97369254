"""Per-turn cost of the session config and the system prompt, with warm caches.

``load_config`` merges three providers for a tenant's session: environment variables
(read at start), a YAML file with a ``tenants:`` section (looked at once a second), and a
``tenant_configs`` row in SQLite (TTL 60 s). The prompt is built from five contributors:
a project file, two fixed texts, a tenant template from SQLite and a contributor of one's
own with a cache. Each sample is one awaited call, timed with ``perf_counter_ns``.

Peers, same process: pydantic-settings reading the same variables into a model on each
call (what a per-turn ``Settings()`` costs), and LangChain's ``PromptTemplate`` joining
five sections already in hand (assembly only: no fetching or caching).

Last, 32 concurrent first turns of a tenant not in the cache (config and prompt template
from SQLite): how many queries reach the database (one each, shared by the turns).

    python benchmarks/config_prompts.py [--calls 20000] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from victor.agent.coordinators import ConfigCoordinator, PromptCoordinator
from victor.agent.coordinators.config_coordinator import (
    EnvironmentConfigProvider,
    FileConfigProvider,
    TenantConfigProvider,
)
from victor.agent.coordinators.prompt_coordinator import (
    BasePromptContributor,
    FileContributor,
    StaticContributor,
    TenantPromptContributor,
)
from victor.agent.coordinators.tenant_table import TenantTable
from victor.protocols import PromptContext

CONFIG = """\
model: claude-sonnet-4-5
temperature: 0.3
max_tokens: 2048
tool_selection: {strategy: hybrid, max_tools: 12, hybrid_alpha: 0.7}
tenants:
  acme: {model: claude-opus-4-5, tool_selection: {max_tools: 5}}
  globex: {temperature: 0.0}
"""


class Glossary(BasePromptContributor):
    cache_ttl = 300

    async def get_contribution(self, context: PromptContext) -> str:
        return f"Glossary of {context.tenant_id}: SLA means service-level agreement."


def summarise(samples: list[int]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000  # noqa: E731
    return {
        "mean_us": statistics.fmean(ordered) / 1000,
        "p50_us": pick(0.50),
        "p99_us": pick(0.99),
    }


async def measure(call: Callable[[], Awaitable[object]], calls: int) -> dict[str, float]:
    for _ in range(max(1000, calls // 10)):
        await call()
    samples = []
    clock = time.perf_counter_ns
    for _ in range(calls):
        start = clock()
        await call()
        samples.append(clock() - start)
    return summarise(samples)


class CountingTable(TenantTable):
    """The real tenant table, counting the queries that reach the database."""

    queries = 0

    async def _fetch(self, tenant_id: str) -> str | None:
        self.queries += 1
        return await super()._fetch(tenant_id)


async def cold_tenant(path: Path, turns: int = 32) -> dict[str, float]:
    """``turns`` concurrent first turns of a tenant not in the cache: its config and its
    prompt template, as each turn loads them; the queries that reached SQLite."""
    config = TenantConfigProvider(path, ttl=60)
    template = TenantPromptContributor(path, ttl=60)
    config.rows = CountingTable(path, table="tenant_configs", column="config", json_column=True)
    template.rows = CountingTable(path, table="tenant_prompt_templates", column="template")
    coordinator = ConfigCoordinator(providers=[config])
    prompts = PromptCoordinator(contributors=[template])

    async def first_turn(i: int) -> str:
        session = f"acme:cold-{i}"
        loaded = await coordinator.load_config(session)
        context = PromptContext(session_id=session, query="Deploy?", model="m", config=loaded)
        return await prompts.build_system_prompt(context, "Base.")

    start = time.perf_counter()
    await asyncio.gather(*(first_turn(i) for i in range(turns)))
    elapsed = time.perf_counter() - start
    await config.aclose()
    await template.aclose()
    return {
        "turns": turns,
        "config_queries": config.rows.queries,
        "template_queries": template.rows.queries,
        "wall_ms": round(elapsed * 1000, 2),
    }


async def main(calls: int) -> dict[str, dict[str, float]]:
    work = Path(tempfile.mkdtemp(prefix="victor-bench-config-"))
    os.environ.update(VICTOR_MAX_TOOL_ITERATIONS="6", VICTOR_ENABLE_ANALYTICS="true")
    (work / "victor.yaml").write_text(CONFIG)
    tenants = TenantConfigProvider(work / "tenants.db", ttl=60)
    await tenants.set_config("acme", {"max_tokens": 1024, "experiment": "onboarding"})
    config = ConfigCoordinator(
        providers=[
            EnvironmentConfigProvider(),
            FileConfigProvider(work / "victor.yaml"),
            tenants,
        ]
    )
    (work / "standards.md").write_text("Coding standards: type hints; ruff-clean. " * 20)
    templates = TenantPromptContributor(work / "tenants.db", priority=20, ttl=60)
    await templates.set_template("acme", "You work for $tenant_id on $model.")
    prompts = PromptCoordinator(
        contributors=[
            FileContributor(work / "standards.md", priority=100),
            StaticContributor("Never reveal customer data.", priority=90),
            StaticContributor("Answer in the user's language.", priority=80),
            templates,
            Glossary(priority=10),
        ]
    )
    session = "acme:session-1"
    turn_config = await config.load_config(session)
    context = PromptContext(session_id=session, query="Deploy?", model="m", config=turn_config)
    base = "You are a careful assistant."

    async def build_with_context() -> str:
        ctx = PromptContext(session_id=session, query="Deploy?", model="m", config=turn_config)
        return await prompts.build_system_prompt(ctx, base)

    from pydantic_settings import BaseSettings, SettingsConfigDict

    class PerCallSettings(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="VICTOR_", extra="ignore")
        max_tool_iterations: int = 10
        enable_analytics: bool = True
        temperature: float | None = None

    async def pydantic_settings_per_call() -> object:
        return PerCallSettings()

    results = {
        "load_config, 3 providers (env, file, tenant table), cached": await measure(
            lambda: config.load_config(session), calls
        ),
        "peer: pydantic-settings model read from the environment per call": await measure(
            pydantic_settings_per_call, calls
        ),
        "build_system_prompt, 5 contributors, cached": await measure(
            lambda: prompts.build_system_prompt(context, base), calls
        ),
        "PromptContext + build_system_prompt (what a turn does)": await measure(
            build_with_context, calls
        ),
    }
    try:
        from langchain_core.prompts import PromptTemplate

        template = PromptTemplate.from_template("{a}\n\n{b}\n\n{c}\n\n{d}\n\n{e}\n\n{f}")
        parts = dict(
            zip(
                "abcdef", [base, "x" * 860, "Never...", "Answer...", "You...", "Gl..."], strict=True
            )
        )

        async def langchain_join() -> str:
            return template.format(**parts)

        results["peer: LangChain PromptTemplate.format, 6 sections in hand"] = await measure(
            langchain_join, calls
        )
    except ImportError:
        pass
    await tenants.aclose()
    await templates.aclose()
    results["cold tenant, concurrent first turns"] = await cold_tenant(work / "tenants.db")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]} on {platform.machine()}, {os.cpu_count()} cores")
    found = asyncio.run(main(args.calls))
    print(f"{'':66} {'mean':>7} {'p50':>7} {'p99':>7}  (us)")
    for name, row in found.items():
        if "mean_us" in row:
            print(f"{name:66} {row['mean_us']:7.1f} {row['p50_us']:7.1f} {row['p99_us']:7.1f}")
        else:
            print(f"{name}: {row}")
    if args.json:
        args.json.write_text(json.dumps(found, indent=2))
