"""MCP servers' tools as Victor tools, over stdio and streamable HTTP.

The server is this file itself, run as ``python tests/test_mcp.py stdio|http``: an
``MCPServer`` (the mcp SDK's FastMCP) with a few tools. Over HTTP it binds 127.0.0.1 on
an ephemeral port and prints the port on its first line.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("mcp")

from victor.agent.coordinators.tool_selection_coordinator import ToolSelectionCoordinator
from victor.mcp import MCPError, MCPServerTools, MCPToolError, load_mcp_tools
from victor.protocols import Tool

HERE = Path(__file__).resolve()
SRC = HERE.parents[1] / "src"


def build_server():  # pragma: no cover - runs in the server subprocess
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    server = MCPServer("victor-test", log_level="WARNING")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers and return the sum."""
        return a + b

    @server.tool()
    def get_weather_forecast(city: str) -> str:
        """Weather forecast (temperature, rain) for a city."""
        return f"Sunny in {city}, 21 C"

    @server.tool()
    def send_email(to: str, subject: str, body: str = "") -> str:
        """Send an email message to a recipient."""
        return f"sent to {to}"

    @server.tool()
    def explode(reason: str) -> str:
        """Always fails, to test error reporting."""
        raise ToolError(f"boom: {reason}")

    return server


def serve_http() -> None:  # pragma: no cover - runs in the server subprocess
    import socket

    import uvicorn

    app = build_server().streamable_http_app(host="127.0.0.1")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    return env


async def test_stdio_tools_are_listed_and_called() -> None:
    async with MCPServerTools.stdio(
        sys.executable, [str(HERE), "stdio"], env={"PYTHONPATH": str(SRC)}, prefix="t_"
    ) as server:
        tools = await server.list_tools()
        by_name = {t.name: t for t in tools}
        assert set(by_name) == {"t_add", "t_get_weather_forecast", "t_send_email", "t_explode"}
        add = by_name["t_add"]
        assert isinstance(add, Tool) and add.is_async
        assert add.description.startswith("Add two integers")
        assert set(add.parameters["properties"]) == {"a", "b"}
        assert add.metadata["mcp_tool"] == "add" and "mcp" in add.tags
        assert await add.fn(a=2, b=40) == "42"
        # Calls from several tasks at once share the one connection.
        results = await asyncio.gather(*(add.fn(a=i, b=1) for i in range(5)))
        assert results == [str(i + 1) for i in range(5)]
        with pytest.raises(MCPToolError, match="boom: why"):
            await by_name["t_explode"].fn(reason="why")
    assert not server.connected


async def test_streamable_http_tools_rank_and_run() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(HERE), "http", stdout=asyncio.subprocess.PIPE, env=_env()
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        url = f"http://127.0.0.1:{int(line)}/mcp"
        tools, server = await load_mcp_tools(url, include=["add", "get_weather_forecast"])
        try:
            assert sorted(t.name for t in tools) == ["add", "get_weather_forecast"]
            coordinator = ToolSelectionCoordinator(max_tools=1, cache_dir=False)
            best = await coordinator.select_tools(
                "will it rain in Oslo tomorrow?", tools, strategy="keyword"
            )
            assert [t.name for t in best] == ["get_weather_forecast"]
            assert await best[0].fn(city="Oslo") == "Sunny in Oslo, 21 C"
        finally:
            await server.aclose()
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)


async def test_http_with_headers_and_unreachable_server() -> None:
    server = MCPServerTools.http(
        "http://127.0.0.1:9/mcp", headers={"Authorization": "Bearer x"}, connect_timeout=5
    )
    with pytest.raises(MCPError):
        await server.connect()
    assert not server.connected


def test_result_text_renders_every_content_kind() -> None:
    from types import SimpleNamespace as NS

    from victor.mcp import result_text

    result = NS(
        content=[
            NS(type="text", text="hello"),
            NS(type="image", mime_type="image/png"),
            NS(type="resource", resource=NS(uri="file:///a.txt", text="inside")),
            NS(type="resource", resource=NS(uri="file:///b.bin")),
            NS(type="resource_link", uri="file:///c"),
        ],
        structured_content={"ignored": True},
    )
    lines = result_text(result).splitlines()
    assert lines == [
        "hello",
        "[image image/png]",
        "inside",
        "[resource file:///b.bin]",
        "[resource file:///c]",
    ]
    assert result_text(NS(content=[], structured_content={"n": 1})) == '{"n": 1}'


if __name__ == "__main__":  # pragma: no cover
    if sys.argv[1:] == ["http"]:
        serve_http()
    else:
        build_server().run("stdio")
