"""A turn has one tenant, taken from its session id or an explicit tenant_id, and every
part of the turn (storage, file config, prompt contributors, analytics) sees the same."""

from __future__ import annotations

import pytest

from helpers import CollectingExporter
from victor import AgentOrchestrator, Settings
from victor.agent.coordinators import (
    AnalyticsCoordinator,
    ConfigCoordinator,
    PromptCoordinator,
)
from victor.agent.coordinators.config_coordinator import FileConfigProvider
from victor.agent.coordinators.prompt_coordinator import BasePromptContributor
from victor.errors import TenantMismatchError
from victor.protocols import IConfigProvider
from victor.protocols.tenancy import scoped_session_id, tenant_of
from victor.providers import FunctionProvider


class Secrets(BasePromptContributor):
    cache_ttl = 60

    async def get_contribution(self, context):
        return f"secret of {context.get('tenant_id')}"


@pytest.fixture
def setup(tmp_path):
    config = tmp_path / "victor.yaml"
    config.write_text(
        "tenants:\n"
        "  acme: {system_prompt: 'You serve acme.'}\n"
        "  globex: {system_prompt: 'You serve globex.'}\n"
    )
    seen: list[str] = []

    def model(messages, tools):
        seen.append(messages[0].content)
        return "ok"

    exporter = CollectingExporter()
    orch = AgentOrchestrator(
        settings=Settings(),
        provider=FunctionProvider(model),
        model="m",
        _config_coordinator=ConfigCoordinator(providers=[FileConfigProvider(config)]),
        _prompt_coordinator=PromptCoordinator(contributors=[Secrets(priority=5)]),
        _analytics_coordinator=AnalyticsCoordinator(exporters=[exporter]),
    )
    return orch, seen, exporter


def test_the_rule():
    assert tenant_of("acme:s1") == "acme" and tenant_of("s1") is None
    assert tenant_of(":s1") is None
    assert scoped_session_id("s1", "acme") == "acme:s1"
    assert scoped_session_id("acme:s1", "acme") == "acme:s1"
    assert scoped_session_id("acme:s1", None) == "acme:s1"
    with pytest.raises(TenantMismatchError, match="belongs to tenant 'acme', not 'globex'"):
        scoped_session_id("acme:s1", "globex")
    with pytest.raises(ValueError, match="tenant_id"):
        scoped_session_id("s1", "a:b")


async def test_a_contradiction_is_refused_before_anything_runs(setup):
    orch, seen, _ = setup
    with pytest.raises(TenantMismatchError):
        await orch.chat("hi", session_id="acme:s1", tenant_id="globex")
    assert seen == []
    assert await orch.list_sessions() == []
    await orch.aclose()


async def test_an_explicit_tenant_scopes_the_session_for_every_part(setup):
    orch, seen, exporter = setup
    response = await orch.chat("hi", session_id="s1", tenant_id="globex")
    assert response.session_id == "globex:s1"
    assert seen == ["You serve globex.\n\nsecret of globex"]
    # The same conversation, reached either way.
    await orch.chat("again", session_id="globex:s1")
    assert len(await orch.history("s1", tenant_id="globex")) == 4
    await orch.analytics_coordinator.flush()
    assert {e.tenant_id for e in exporter.events} == {"globex"}
    await orch.chat("hi", session_id="acme:s1")
    assert seen[-1] == "You serve acme.\n\nsecret of acme"
    await orch.aclose()


async def test_a_tenant_scoped_caller_cannot_read_another_tenants_sessions(setup):
    orch, _, _ = setup
    await orch.chat("acme's secret plan", session_id="acme:plan")
    await orch.chat("globex's", session_id="globex:plan")
    await orch.chat("no tenant", session_id="plain")
    # A guessed id is read as the caller's own session, which does not exist.
    assert await orch.history("plan", tenant_id="globex") != []
    assert await orch.history("plain", tenant_id="globex") == []
    with pytest.raises(TenantMismatchError):
        await orch.history("acme:plan", tenant_id="globex")
    assert await orch.list_sessions(tenant_id="globex") == ["globex:plan"]
    assert set(await orch.list_sessions()) == {"acme:plan", "globex:plan", "plain"}
    await orch.aclose()


async def test_a_config_naming_another_tenant_is_refused():
    class Wrong(IConfigProvider):
        async def get_config(self, session_id):
            return {"tenant_id": "globex"}

    calls = []
    orch = AgentOrchestrator(
        settings=Settings(),
        provider=FunctionProvider(lambda m, t: calls.append(m) or "ok"),
        model="m",
        _config_coordinator=ConfigCoordinator(providers=[Wrong()]),
    )
    with pytest.raises(TenantMismatchError, match="names tenant 'globex'"):
        await orch.chat("hi", session_id="acme:s")
    assert calls == []
    assert (await orch.chat("hi", session_id="globex:s")).content == "ok"
    await orch.aclose()
