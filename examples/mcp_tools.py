# Tools from an MCP server (pip install "victor-orchestrator[mcp]"): here a local one over
# stdio, examples/servers/weather_server.py; a scripted model calls its tool.
import asyncio
import sys
from pathlib import Path

from victor import AgentOrchestrator, Settings
from victor.mcp import MCPServerTools
from victor.providers import ScriptedProvider

SERVER = Path(__file__).parent / "servers" / "weather_server.py"


async def main() -> None:
    model = ScriptedProvider(
        [
            {"tool_calls": [{"name": "get_forecast", "arguments": {"city": "Oslo"}}]},
            "Take an umbrella.",
        ]
    )
    async with (
        AgentOrchestrator(settings=Settings(), provider=model, model="m") as orchestrator,
        MCPServerTools.stdio(sys.executable, [str(SERVER)]) as server,
    ):
        orchestrator.register_tools(await server.list_tools())
        # or MCPServerTools.http("http://localhost:8000/mcp", headers={"Authorization": "..."})
        response = await orchestrator.chat("Weather in Oslo tomorrow?")
        print(response.tool_results[0].content, "->", response.content)


asyncio.run(main())
