"""Tenant rows (configs, prompt templates) read once for concurrent turns of a cold tenant,
against real SQLite and PostgreSQL: one query for all of them, and a failing query fails
exactly those turns and is not cached."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from victor import AgentOrchestrator, Settings
from victor.agent.coordinators import ConfigCoordinator, PromptCoordinator
from victor.agent.coordinators.config_providers import TenantConfigProvider
from victor.agent.coordinators.prompt_contributors import TenantPromptContributor
from victor.agent.coordinators.tenant_table import TenantTable
from victor.providers import FunctionProvider
from victor.sessions import InMemorySessionStore

TURNS = 20


class CountingTable(TenantTable):
    """The real table, counting the queries that reach the database."""

    queries = 0

    async def _fetch(self, tenant_id: str) -> str | None:
        self.queries += 1
        return await super()._fetch(tenant_id)


def counted(
    owner: TenantConfigProvider | TenantPromptContributor, kind: type[CountingTable] = CountingTable
) -> CountingTable:
    """``owner``'s table, counting its queries."""
    rows = owner.rows
    owner.rows = kind(
        rows.dsn_or_path,
        table=rows.table,
        column=rows.column,
        ttl=rows.ttl,
        schema=rows.schema,
        json_column=rows.column == "config",
    )
    return owner.rows


async def check_one_query_for_concurrent_turns(dsn_or_path: str | Path, **kwargs: str) -> None:
    provider = TenantConfigProvider(dsn_or_path, ttl=60, **kwargs)
    contributor = TenantPromptContributor(dsn_or_path, ttl=60, **kwargs)
    await provider.set_config("acme", {"model": "acme-model"})
    await contributor.set_template("acme", "You serve $tenant_id.")
    configs, templates = counted(provider), counted(contributor)
    seen: list[tuple[str, str]] = []

    def model(messages, tools):
        seen.append((messages[0].content, "x"))
        return "ok"

    orchestrator = AgentOrchestrator(
        settings=Settings(enable_analytics=False),
        provider=FunctionProvider(model),
        model="m",
        session_store=InMemorySessionStore(),
        _config_coordinator=ConfigCoordinator(providers=[provider]),
        _prompt_coordinator=PromptCoordinator(contributors=[contributor]),
    )
    try:
        responses = await asyncio.gather(
            *(orchestrator.chat("hi", session_id=f"acme:s{i}") for i in range(TURNS))
        )
        assert {r.model for r in responses} == {"acme-model"}
        assert [content for content, _ in seen] == ["You serve acme."] * TURNS
        assert (configs.queries, templates.queries) == (1, 1)
        # Cached now: later turns do not query at all; another tenant gets its own query.
        await orchestrator.chat("again", session_id="acme:s0")
        await asyncio.gather(*(orchestrator.chat("hi", session_id=f"globex:{i}") for i in range(5)))
        assert (configs.queries, templates.queries) == (2, 2)
    finally:
        await orchestrator.aclose()


async def test_concurrent_turns_of_a_cold_tenant_query_once_on_sqlite(tmp_path):
    await check_one_query_for_concurrent_turns(tmp_path / "tenants.db")


@pytest.mark.postgres
async def test_concurrent_turns_of_a_cold_tenant_query_once_on_postgresql(postgres_dsn, pg_schema):
    await check_one_query_for_concurrent_turns(postgres_dsn, schema=pg_schema)


async def test_a_failing_query_fails_its_waiters_and_is_not_cached_on_sqlite(tmp_path):
    path = tmp_path / "tenants.db"
    path.mkdir()  # cannot be opened as a database
    provider = TenantConfigProvider(path, ttl=60)
    rows = counted(provider)
    results = await asyncio.gather(
        *(provider.get_config(f"acme:s{i}") for i in range(TURNS)), return_exceptions=True
    )
    assert all(isinstance(r, sqlite3.OperationalError) for r in results)
    assert rows.queries == 1
    path.rmdir()
    writer = TenantConfigProvider(path, ttl=0)
    await writer.set_config("acme", {"model": "acme-model"})
    # The failure was not cached: the next turns ask again, once.
    results = await asyncio.gather(*(provider.get_config(f"acme:s{i}") for i in range(TURNS)))
    assert results == [{"model": "acme-model"}] * TURNS
    assert rows.queries == 2


async def test_a_cancelled_turn_leaves_the_query_to_the_others(tmp_path):
    path = tmp_path / "tenants.db"
    contributor = TenantPromptContributor(path, ttl=60)
    await contributor.set_template("acme", "Acme rules.")
    rows = counted(contributor)
    first = asyncio.create_task(rows.get("acme"))
    others = [asyncio.create_task(rows.get("acme")) for _ in range(5)]
    await asyncio.sleep(0)  # all waiting on the one query
    first.cancel()
    assert await asyncio.gather(*others) == ["Acme rules."] * 5
    assert first.cancelled()
    assert rows.queries == 1


class HeldTable(CountingTable):
    """The real table, whose answers are held back until ``release`` is set."""

    answered: asyncio.Event
    release: asyncio.Event

    async def _fetch(self, tenant_id: str) -> str | None:
        value = await super()._fetch(tenant_id)
        self.answered.set()
        await self.release.wait()
        return value


async def test_a_write_during_a_read_is_not_hidden_by_it(tmp_path):
    provider = TenantConfigProvider(tmp_path / "tenants.db", ttl=60)
    await provider.set_config("acme", {"model": "old"})
    rows = counted(provider, HeldTable)
    assert isinstance(rows, HeldTable)
    rows.answered, rows.release = asyncio.Event(), asyncio.Event()
    reading = asyncio.create_task(provider.get_config("acme:s"))
    await rows.answered.wait()  # the database has answered "old"; the read is under way
    await provider.set_config("acme", {"model": "new"})
    rows.release.set()
    assert (await reading)["model"] == "old"  # what the database said when asked
    assert (await provider.get_config("acme:s"))["model"] == "new"  # not cached over the write


@pytest.mark.postgres
async def test_a_failing_query_fails_its_waiters_and_is_not_cached_on_postgresql(
    throwaway_postgres,
):
    server = throwaway_postgres
    writer = TenantConfigProvider(server.dsn, ttl=0)
    await writer.set_config("acme", {"model": "acme-model"})
    await writer.aclose()
    provider = TenantConfigProvider(server.dsn, ttl=60)
    rows = counted(provider)
    server.stop()
    results = await asyncio.gather(
        *(provider.get_config(f"acme:s{i}") for i in range(TURNS)), return_exceptions=True
    )
    assert all(isinstance(r, OSError) for r in results), results[:3]
    assert rows.queries == 1
    server.start()
    results = await asyncio.gather(*(provider.get_config(f"acme:s{i}") for i in range(TURNS)))
    assert results == [{"model": "acme-model"}] * TURNS
    assert rows.queries == 2
    await provider.aclose()
