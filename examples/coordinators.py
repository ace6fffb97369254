# Per-tenant configuration from a file and a prompt contributor, with a stand-in model
# that answers with the system prompt it was given.
import asyncio
from pathlib import Path

from victor import AgentOrchestrator, Settings
from victor.agent.coordinators import ConfigCoordinator, PromptCoordinator
from victor.agent.coordinators.config_coordinator import FileConfigProvider
from victor.agent.coordinators.prompt_coordinator import BasePromptContributor
from victor.providers import FunctionProvider


class CodingStandards(BasePromptContributor):
    async def get_contribution(self, context):
        return f"Follow the coding standards of {context.get('tenant_id')}."


async def main() -> None:
    config_file = Path(__file__).with_name("victor.yaml")
    orchestrator = AgentOrchestrator(
        settings=Settings(),
        provider=FunctionProvider(lambda messages, tools: messages[0].content),
        model="claude-sonnet-4-5",
        _config_coordinator=ConfigCoordinator(providers=[FileConfigProvider(config_file)]),
        _prompt_coordinator=PromptCoordinator(contributors=[CodingStandards(priority=10)]),
    )
    async with orchestrator:
        for session_id in ("acme:alice", "globex:bob"):
            response = await orchestrator.chat("Review my patch", session_id=session_id)
            print(f"{session_id} ({response.model}): {response.content!r}")


asyncio.run(main())
