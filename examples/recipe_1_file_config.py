"""Recipe 1: file-based configuration -- a YAML file, environment variables and the turn.

Runs offline (a model function stands in for a real one; history in SQLite):

    python examples/recipe_1_file_config.py

The file gives the defaults and per-tenant overrides, re-read when it changes; ``VICTOR_*``
variables sit below it, the turn's own ``config=`` above. A bad edit keeps the last good
file in use; a wrong value is refused with the file, line and column.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from victor.agent.coordinators import ConfigCoordinator
from victor.agent.coordinators.config_coordinator import (
    EnvironmentConfigProvider,
    FileConfigProvider,
)
from victor.agent.orchestrator import AgentOrchestrator
from victor.config.settings import Settings
from victor.errors import ConfigError
from victor.providers import FunctionProvider

CONFIG = """\
model: claude-sonnet-4-5
temperature: 0.3
tool_selection: {strategy: keyword, max_tools: 8}
tenants:
  acme:
    model: claude-opus-4-5
    system_prompt: You are Acme's support assistant.
"""


async def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="victor-recipe-1-"))
    os.environ.setdefault("VICTOR_DATA_DIR", str(work / "data"))
    os.environ["VICTOR_MAX_TOKENS"] = "512"  # read by EnvironmentConfigProvider
    path = work / "victor.yaml"
    path.write_text(CONFIG)

    coordinator = ConfigCoordinator(
        providers=[
            EnvironmentConfigProvider(priority=10),
            FileConfigProvider(path, priority=50, check_interval=0),
        ]
    )

    def model(messages, tools):
        system = messages[0].content if messages[0].role == "system" else "(none)"
        return f"system prompt: {system}"

    orchestrator = AgentOrchestrator(
        settings=Settings(),
        provider=FunctionProvider(model),
        model="fallback-model",
        _config_coordinator=coordinator,
    )
    for session in ("session-1", "acme:session-1"):
        config = await coordinator.load_config(session)
        response = await orchestrator.chat("Hello!", session_id=session)
        print(f"{session}: model={response.model} config={config}")
        print(f"  -> {response.content}")

    # The turn's own config wins over every provider.
    response = await orchestrator.chat("Hi", session_id="session-2", config={"model": "m-turn"})
    print(f"override: model={response.model}")

    # Hot reload: an edit is picked up on the next turn...
    path.write_text(CONFIG.replace("temperature: 0.3", "temperature: 0.9"))
    os.utime(path, (1, 1))
    print("after an edit:", (await coordinator.load_config("session-3"))["temperature"])
    # ...a broken edit is logged and the last good version kept.
    path.write_text("temperature: [0.9\n")
    os.utime(path, (2, 2))
    print("after a bad edit:", (await coordinator.load_config("session-3"))["temperature"])

    # A wrong value in a new file is refused, naming the file, line and column.
    bad = work / "bad.yaml"
    bad.write_text("model: m\ntemperature: hot\n")
    try:
        FileConfigProvider(bad)
    except ConfigError as exc:
        print("refused:", exc)
    await orchestrator.aclose()


if __name__ == "__main__":
    asyncio.run(main())
