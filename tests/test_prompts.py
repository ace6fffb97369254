"""The system prompt: contributors by priority, cached per tenant, within a budget."""

from __future__ import annotations

import logging
import os

import pytest
from pydantic import ValidationError

from victor import AgentOrchestrator, Settings
from victor.agent.coordinators import PromptCoordinator
from victor.agent.coordinators.prompt_coordinator import (
    BasePromptContributor,
    FileContributor,
    StaticContributor,
    TenantPromptContributor,
)
from victor.errors import ConfigError
from victor.protocols import PromptContext
from victor.providers import FunctionProvider


class Counting(BasePromptContributor):
    cache_ttl = 60

    def __init__(self, priority=0):
        super().__init__(priority)
        self.calls = 0

    async def get_contribution(self, context):
        self.calls += 1
        return f"rules of {context.get('tenant_id')} for {context['query']}"


class ByQuery(Counting):
    def cache_key(self, context):
        return context.query


class Failing(BasePromptContributor):
    async def get_contribution(self, context):
        raise RuntimeError("template store down")


def test_prompt_context_is_a_mapping_carrying_the_turn():
    context = PromptContext(
        session_id="acme:s1", query="deploy?", config={"model": "m", "brand": "Acme"}
    )
    assert context.get("tenant_id") == context.tenant_id == "acme"  # from the session id
    assert context["session_id"] == "acme:s1" and context["query"] == "deploy?"
    assert context["brand"] == "Acme" and context.get("missing", 1) == 1
    assert context["config"] == {"model": "m", "brand": "Acme"}
    assert "brand" in context and dict(context)["tenant_id"] == "acme"
    assert PromptContext(session_id="plain").tenant_id is None
    assert PromptContext(session_id="plain", tenant_id="acme").tenant_id == "acme"
    with pytest.raises(ValidationError, match="belongs to tenant 'acme', not 'globex'"):
        PromptContext(session_id="acme:s1", tenant_id="globex")


async def test_contributions_join_highest_priority_first_and_failures_are_skipped(caplog):
    coordinator = PromptCoordinator(
        contributors=[
            StaticContributor("low", priority=1),
            Failing(priority=50),
            StaticContributor("high", priority=10),
            StaticContributor("   ", priority=5),  # blank: nothing added
        ]
    )
    with caplog.at_level(logging.ERROR):
        prompt = await coordinator.build_system_prompt(PromptContext(query="q"), "Base.")
        assert prompt == "Base.\n\nhigh\n\nlow"
        assert await coordinator.build_system_prompt(PromptContext(query="q")) == "high\n\nlow"
    # Logged once while it keeps failing, in one line naming the error.
    assert [r.getMessage() for r in caplog.records] == [
        "prompt contributor Failing(priority=50) failed, its section left out until it works "
        "again: RuntimeError: template store down"
    ]
    assert await PromptCoordinator().build_system_prompt(PromptContext(), "b") == "b"


class WrongType(BasePromptContributor):
    async def get_contribution(self, context):
        return ["a list"]


async def test_a_contribution_of_the_wrong_type_is_skipped_and_logged(caplog):
    coordinator = PromptCoordinator(contributors=[WrongType(priority=2), StaticContributor("ok")])
    with caplog.at_level(logging.ERROR):
        assert await coordinator.build_system_prompt(PromptContext(), "Base.") == "Base.\n\nok"
    assert "TypeError: get_contribution returned list, not a str" in caplog.text


def test_what_is_not_a_contributor_is_refused_when_added():
    with pytest.raises(TypeError, match=r"a prompt contributor has get_contribution\(\)"):
        PromptCoordinator(contributors=["Be brief."])
    coordinator = PromptCoordinator()
    with pytest.raises(TypeError, match="has not"):
        coordinator.add_contributor(None)
    assert coordinator.contributors == []


async def test_the_cache_is_keyed_by_tenant():
    per_tenant, per_query = Counting(priority=2), ByQuery(priority=1)
    coordinator = PromptCoordinator(contributors=[per_tenant, per_query])
    acme = await coordinator.build_system_prompt(PromptContext(session_id="acme:1", query="a"))
    again = await coordinator.build_system_prompt(PromptContext(session_id="acme:2", query="a"))
    assert acme == again == "rules of acme for a\n\nrules of acme for a"
    assert (per_tenant.calls, per_query.calls) == (1, 1)
    globex = await coordinator.build_system_prompt(PromptContext(session_id="globex:1", query="a"))
    assert globex == "rules of globex for a\n\nrules of globex for a"
    # A contributor keyed by the query is still keyed by the tenant as well.
    other = await coordinator.build_system_prompt(PromptContext(session_id="acme:3", query="b"))
    assert other == "rules of acme for a\n\nrules of acme for b"
    assert (per_tenant.calls, per_query.calls) == (2, 3)
    coordinator.max_cache_entries = 2
    await coordinator.build_system_prompt(PromptContext(session_id="initech:1", query="c"))
    assert len(coordinator._cache) == 2


async def test_over_the_budget_the_lowest_priority_is_cut_first(caplog):
    coordinator = PromptCoordinator(
        contributors=[
            StaticContributor("A" * 40, priority=30),
            StaticContributor("B" * 40, priority=20),
            StaticContributor("C" * 10, priority=10),
        ],
        max_chars=99,
    )
    context = PromptContext(session_id="acme:s")
    with caplog.at_level(logging.WARNING):
        prompt = await coordinator.build_system_prompt(context, "base")
        # base + A + B = 4 + 2 + 40 + 2 + 40 = 88 fits; with C (2 + 10) it is 100.
        assert prompt == "base\n\n" + "A" * 40 + "\n\n" + "B" * 40
        await coordinator.build_system_prompt(context, "base")
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1  # once, not every turn
    assert "budget of 99 characters for tenant 'acme': left out" in warnings[0]
    assert "StaticContributor(priority=10)" in warnings[0]
    # A long base leaves room for nothing: every contribution goes, the base stays.
    assert await coordinator.build_system_prompt(context, "x" * 200) == "x" * 200


async def test_file_contributor_reads_the_file_only_when_it_changes(tmp_path, caplog):
    path = tmp_path / ".victor" / "standards.md"
    path.parent.mkdir()
    path.write_text("Use type hints.\n")
    contributor = FileContributor(path, priority=10, check_interval=0)
    context = PromptContext(query="q")
    for _ in range(5):
        assert await contributor.get_contribution(context) == "Use type hints.\n"
    assert contributor.reads == 1
    path.write_text("Use type hints and tests.\n")
    os.utime(path, ns=(1, 1))
    assert await contributor.get_contribution(context) == "Use type hints and tests.\n"
    assert contributor.reads == 2
    with caplog.at_level(logging.ERROR):
        path.unlink()  # gone (being replaced, say): its last text stays
        assert await contributor.get_contribution(context) == "Use type hints and tests.\n"
        assert await contributor.get_contribution(context) == "Use type hints and tests.\n"
    assert len(caplog.records) == 1 and "standards.md: prompt file not found" in caplog.text
    slow = FileContributor(tmp_path / ".victor" / "later.md", optional=True, check_interval=3600)
    assert await slow.get_contribution(context) == ""
    with pytest.raises(ConfigError, match=r"nothing\.md: prompt file not found"):
        FileContributor(tmp_path / "nothing.md")
    binary = tmp_path / "b.md"
    binary.write_bytes(b"\xff\xfe\xfa")
    with pytest.raises(ConfigError, match=r"b\.md: cannot read the prompt file"):
        FileContributor(binary)


async def test_an_optional_file_appears_later(tmp_path):
    path = tmp_path / "standards.md"
    contributor = FileContributor(path, optional=True, check_interval=0)
    assert await contributor.get_contribution(PromptContext()) == ""
    path.write_text("Be brief.")
    assert await contributor.get_contribution(PromptContext()) == "Be brief."


async def check_tenant_templates(dsn_or_path, **kwargs):
    contributor = TenantPromptContributor(dsn_or_path, priority=5, ttl=0, **kwargs)
    seen: list[str] = []

    def model(messages, tools):
        seen.append(messages[0].content if messages[0].role == "system" else "")
        return "ok"

    orch = AgentOrchestrator(
        settings=Settings(),
        provider=FunctionProvider(model),
        model="m",
        system_prompt="Base.",
        _prompt_coordinator=PromptCoordinator(contributors=[contributor]),
    )
    try:
        await contributor.set_template("acme", "You serve $tenant_id with ${model}; $unknown")
        await contributor.set_template("globex", "Globex only.")
        await orch.chat("hi", session_id="acme:s")
        await orch.chat("hi", session_id="s", tenant_id="globex")
        await orch.chat("hi", session_id="plain")
        await orch.chat("hi", session_id="initech:s")  # no row
        assert seen == [
            "Base.\n\nYou serve acme with m; $unknown",
            "Base.\n\nGlobex only.",
            "Base.",
            "Base.",
        ]
        await contributor.set_template("acme", "Changed.")
        await contributor.delete_template("globex")
        await orch.chat("hi", session_id="acme:s")
        await orch.chat("hi", session_id="globex:s")
        assert seen[-2:] == ["Base.\n\nChanged.", "Base."]
    finally:
        await orch.aclose()


async def test_tenant_prompt_templates_on_sqlite(tmp_path):
    await check_tenant_templates(tmp_path / "prompts.db")


@pytest.mark.postgres
async def test_tenant_prompt_templates_on_postgresql(postgres_dsn, pg_schema):
    await check_tenant_templates(postgres_dsn, schema=pg_schema)


async def test_a_tenant_template_store_going_away_keeps_the_last_template(tmp_path):
    path = tmp_path / "prompts.db"
    contributor = TenantPromptContributor(path, ttl=0)
    await contributor.set_template("acme", "Acme rules.")
    context = PromptContext(session_id="acme:s")
    assert await contributor.get_contribution(context) == "Acme rules."
    path.unlink()
    path.mkdir()  # cannot be opened any more
    assert await contributor.get_contribution(context) == "Acme rules."
    coordinator = PromptCoordinator(contributors=[contributor])
    # A tenant never read: the contributor raises, the coordinator leaves it out.
    assert await coordinator.build_system_prompt(PromptContext(session_id="globex:s"), "b") == "b"
