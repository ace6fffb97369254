"""Recipe 2: project-specific prompts -- coding standards, compliance, per-tenant text.

Runs offline (a model function shows the system prompt it is given):

    python examples/recipe_2_project_prompts.py

Contributors add sections to the system prompt, highest priority first: the project's
``.victor/standards.md`` (re-read only when it changes), a fixed compliance note, a
contributor of your own, and each tenant's template from a SQLite table. Over the size
budget the lowest priority is cut first; a contributor that fails is left out, logged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from pathlib import Path

from victor.agent.coordinators import PromptCoordinator
from victor.agent.coordinators.prompt_coordinator import (
    BasePromptContributor,
    FileContributor,
    StaticContributor,
    TenantPromptContributor,
)
from victor.agent.orchestrator import AgentOrchestrator
from victor.config.settings import Settings
from victor.protocols import PromptContext
from victor.providers import FunctionProvider


class QueryKindContributor(BasePromptContributor):
    """A contributor of your own: reads the turn from the context (a mapping)."""

    async def get_contribution(self, context: PromptContext) -> str:
        if "test" in context.get("query", "").lower():
            return "When writing tests, use pytest and no mocks of our own code."
        return ""


class BrokenContributor(BasePromptContributor):
    async def get_contribution(self, context: PromptContext) -> str:
        raise RuntimeError("the compliance service is down")


async def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    work = Path(tempfile.mkdtemp(prefix="victor-recipe-2-"))
    os.environ.setdefault("VICTOR_DATA_DIR", str(work / "data"))
    standards = work / ".victor" / "standards.md"
    standards.parent.mkdir()
    standards.write_text("Coding standards: type hints everywhere; ruff-clean.")

    templates = TenantPromptContributor(work / "prompts.db", priority=40, ttl=30)
    await templates.set_template("acme", "You work for $tenant_id. Model: $model.")

    prompts = PromptCoordinator(
        contributors=[
            FileContributor(standards, priority=100, check_interval=0),
            StaticContributor("Never reveal customer data.", priority=90),
            QueryKindContributor(priority=50),
            templates,
            BrokenContributor(priority=10),
        ],
        max_chars=4_000,
    )

    def model(messages, tools):
        return messages[0].content if messages[0].role == "system" else ""

    orchestrator = AgentOrchestrator(
        settings=Settings(),
        provider=FunctionProvider(model),
        model="claude-sonnet-4-5",
        system_prompt="You are a coding assistant.",
        _prompt_coordinator=prompts,
    )
    response = await orchestrator.chat("Write a test for the parser", session_id="acme:s1")
    print("acme's system prompt:\n" + response.content + "\n")
    response = await orchestrator.chat("Hello", session_id="s1")
    print("no tenant:\n" + response.content + "\n")

    # The standards file changes: the next turn sees it.
    standards.write_text("Coding standards: type hints; docstrings on public functions.")
    os.utime(standards, (1, 1))
    response = await orchestrator.chat("Hello again", session_id="s1")
    print("after editing standards.md:\n" + response.content + "\n")

    # A tight budget: the lowest-priority sections go first (logged once).
    prompts.max_chars = 120
    response = await orchestrator.chat("Write a test", session_id="acme:s2")
    print("within 120 characters:\n" + response.content)
    await orchestrator.aclose()


if __name__ == "__main__":
    asyncio.run(main())
