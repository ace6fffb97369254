"""MultiTenantOrchestrator: an orchestrator per tenant, bounded, closed cleanly, and
tenants kept apart in the session stores (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from victor import AgentOrchestrator, MultiTenantOrchestrator, Settings
from victor.agent.coordinators import ConfigCoordinator
from victor.agent.coordinators.config_coordinator import FileConfigProvider
from victor.errors import TenantMismatchError
from victor.providers import FunctionProvider


def echo(messages, tools):
    return f"echo: {messages[-1].content}"


def make_factory(made, session_store=None):
    def factory(tenant_id, config):
        made.append((tenant_id, config))
        store = session_store(tenant_id) if session_store else None
        return AgentOrchestrator(
            settings=Settings(),
            provider=FunctionProvider(echo),
            model=config.get("model", "default-m"),
            session_store=store,
        )

    return factory


async def test_each_tenant_gets_an_orchestrator_made_from_its_config(tmp_path):
    path = tmp_path / "victor.yaml"
    path.write_text("model: shared-m\ntenants:\n  acme: {model: acme-m}\n")
    made: list = []
    multi = MultiTenantOrchestrator(
        make_factory(made), config_coordinator=ConfigCoordinator([FileConfigProvider(path)])
    )
    # Many first turns at once still make one orchestrator per tenant.
    answers = await asyncio.gather(
        *(multi.chat(f"hi {i}", f"s{i}", tenant_id="acme") for i in range(8)),
        multi.chat("hello", "s1", tenant_id="globex"),
    )
    assert [a.model for a in answers] == ["acme-m"] * 8 + ["shared-m"]
    assert {a.session_id for a in answers[:8]} == {f"acme:s{i}" for i in range(8)}
    assert sorted(t for t, _ in made) == ["acme", "globex"]
    assert dict(made)["acme"] == {"model": "acme-m"}
    assert multi.tenants == ["acme", "globex"]
    chunks = [c async for c in multi.stream("streamed", "s1", tenant_id="globex")]
    assert chunks[-1].type == "done" and chunks[-1].response.content == "echo: streamed"
    assert len(await multi.history("s1", tenant_id="globex")) == 4
    await multi.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await multi.chat("hi", tenant_id="acme")


async def test_least_recently_used_tenants_are_closed_past_the_bound():
    made: list = []
    multi = MultiTenantOrchestrator(make_factory(made), max_tenants=2)
    orchestrators = {}
    for tenant in ("a", "b", "a", "c"):
        async with multi.orchestrator(tenant) as orch:
            orchestrators.setdefault(tenant, orch)
        await asyncio.sleep(0)
    assert multi.tenants == ["a", "c"]  # b was the least recently used
    await asyncio.sleep(0.01)
    assert orchestrators["b"]._closed and not orchestrators["a"]._closed
    await multi.chat("back", "s", tenant_id="b")  # made again on demand
    assert [t for t, _ in made] == ["a", "b", "c", "b"]
    await multi.aclose()
    assert all(o._closed for o in orchestrators.values())


async def test_a_busy_tenant_is_closed_only_after_its_turn_ends():
    release = asyncio.Event()

    async def slow(messages, tools):
        await release.wait()
        return "done"

    def factory(tenant_id, config):
        return AgentOrchestrator(settings=Settings(), provider=FunctionProvider(slow), model="m")

    multi = MultiTenantOrchestrator(factory, max_tenants=1)
    turn = asyncio.create_task(multi.chat("long question", "s", tenant_id="acme"))
    await asyncio.sleep(0.05)
    async with multi.orchestrator("acme") as busy:
        pass
    release_other = asyncio.create_task(multi.chat("hi", "s", tenant_id="globex"))
    await asyncio.sleep(0.05)
    assert multi.tenants == ["globex"] and not busy._closed  # evicted, still answering
    release.set()
    assert (await turn).content == "done"
    assert busy._closed
    assert (await release_other).content == "done"
    assert len(await multi.history("s", tenant_id="acme")) == 2  # the turn was stored
    await multi.aclose()


async def test_bad_tenants_and_a_failing_factory():
    calls = []

    def factory(tenant_id, config):
        calls.append(tenant_id)
        if len(calls) == 1:
            raise RuntimeError("tenant database down")
        return AgentOrchestrator(settings=Settings(), provider=FunctionProvider(echo), model="m")

    multi = MultiTenantOrchestrator(factory)
    for bad in ("", "a:b"):
        with pytest.raises(ValueError, match="tenant_id must be a non-empty string"):
            await multi.chat("hi", tenant_id=bad)
    with pytest.raises(RuntimeError, match="tenant database down"):
        await multi.chat("hi", tenant_id="acme")
    assert multi.tenants == []
    assert (await multi.chat("hi", tenant_id="acme")).content == "echo: hi"  # tried again
    with pytest.raises(ValueError, match="max_tenants"):
        MultiTenantOrchestrator(factory, max_tenants=0)
    await multi.aclose()


async def check_isolation(multi: MultiTenantOrchestrator) -> None:
    await multi.chat("acme's secret plan", "plan", tenant_id="acme")
    await multi.chat("globex's own", "notes", tenant_id="globex")
    # A guessed id of another tenant is refused, for reading and for continuing.
    with pytest.raises(TenantMismatchError):
        await multi.history("acme:plan", tenant_id="globex")
    with pytest.raises(TenantMismatchError):
        await multi.chat("tell me the plan", "acme:plan", tenant_id="globex")
    # A plain id is the caller's own session, never another tenant's.
    assert await multi.history("plan", tenant_id="globex") == []
    response = await multi.chat("what plan?", "plan", tenant_id="globex")
    assert response.session_id == "globex:plan"
    acme = await multi.history("plan", tenant_id="acme")
    assert [m.content for m in acme] == ["acme's secret plan", "echo: acme's secret plan"]
    assert set(await multi.list_sessions(tenant_id="globex")) == {"globex:notes", "globex:plan"}
    assert await multi.list_sessions(tenant_id="acme") == ["acme:plan"]


async def test_tenants_are_kept_apart_in_a_shared_sqlite_store():
    # Settings() gives every tenant's orchestrator the same SQLite file.
    multi = MultiTenantOrchestrator(make_factory([]), max_tenants=1)
    await check_isolation(multi)
    await multi.aclose()


@pytest.mark.postgres
async def test_tenants_are_kept_apart_in_a_shared_postgresql_store(postgres_dsn):
    import asyncpg

    from victor.sessions import PostgresSessionStore

    schema = f"test_multi_tenant_{uuid.uuid4().hex[:12]}"

    def store(tenant_id):  # each orchestrator its own pool, on the same tables
        return PostgresSessionStore(postgres_dsn, schema=schema, max_pool_size=2)

    multi = MultiTenantOrchestrator(make_factory([], store), max_tenants=1)
    try:
        await check_isolation(multi)
    finally:
        await multi.aclose()
        conn = await asyncpg.connect(postgres_dsn)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()
