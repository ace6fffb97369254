"""MCP servers' tools as Victor tools, over stdio and streamable HTTP.

The server is this file itself, run as ``python tests/test_mcp.py stdio|http``: an
``MCPServer`` (the mcp SDK's FastMCP) with a few tools. Over HTTP it binds 127.0.0.1 on
an ephemeral port and prints the port on its first line.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
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
    from mcp.server.mcpserver import Context, MCPServer
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

    def whoami(ctx) -> str:
        """The Authorization header the request came with."""
        return (ctx.headers or {}).get("authorization", "anonymous")

    whoami.__annotations__["ctx"] = Context  # a class, not a string: imported locally
    server.tool()(whoami)

    return server


def serve_http() -> None:  # pragma: no cover - runs in the server subprocess
    import socket

    import uvicorn

    app = build_server().streamable_http_app(host="127.0.0.1")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen()  # before the port is told: a client may connect at once
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
        assert set(by_name) == {
            "t_add",
            "t_get_weather_forecast",
            "t_send_email",
            "t_explode",
            "t_whoami",
        }
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


@pytest.fixture(scope="module")
def http_url():
    """One streamable HTTP server for the module's HTTP tests."""
    proc = subprocess.Popen(
        [sys.executable, str(HERE), "http"], stdout=subprocess.PIPE, env=_env(), text=True
    )
    try:
        assert proc.stdout is not None
        yield f"http://127.0.0.1:{int(proc.stdout.readline())}/mcp"
    finally:
        proc.terminate()
        proc.wait(10)


async def test_streamable_http_tools_rank_and_run(http_url: str) -> None:
    tools, server = await load_mcp_tools(http_url, include=["add", "get_weather_forecast"])
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


async def test_http_with_headers_reconnects_and_closes_its_clients(http_url, monkeypatch) -> None:
    import victor.mcp as victor_mcp

    clients = []
    make_client = victor_mcp._http_client

    def recording(*args):
        clients.append(make_client(*args))
        return clients[-1]

    monkeypatch.setattr(victor_mcp, "_http_client", recording)
    server = MCPServerTools.http(http_url, headers={"Authorization": "Bearer s3cret"})
    for _ in range(2):  # the second round reconnects over a fresh transport and client
        assert await server.call("whoami") == "Bearer s3cret"
        await server.aclose()
        assert not server.connected and clients[-1].is_closed
    assert len(clients) == 2


async def test_http_with_headers_and_unreachable_server() -> None:
    server = MCPServerTools.http(
        "http://127.0.0.1:9/mcp", headers={"Authorization": "Bearer x"}, connect_timeout=5
    )
    with pytest.raises(MCPError):
        await server.connect()
    assert not server.connected


def fake_mcp(monkeypatch, *, enter_delay=0.05, exit_delay=0.0, names=("add",)):
    """Stands in for the SDK's ``mcp.Client``; ``log`` records opens and cleanups."""
    from types import SimpleNamespace as NS

    import victor.mcp as victor_mcp

    log: list[str] = []

    class Client:
        def __init__(self, target) -> None:
            self.target = target
            log.append("open")

        async def __aenter__(self):
            await asyncio.sleep(enter_delay)
            return self

        async def __aexit__(self, *exc) -> None:
            try:
                await asyncio.sleep(exit_delay)
            finally:
                log.append("cleaned")

        async def list_tools(self, cursor=None):
            specs = [
                NS(name=n, input_schema={}, description=f"tool {n}", annotations=None)
                for n in names
            ]
            return NS(tools=specs, next_cursor=None)

        async def call_tool(self, name, arguments, read_timeout_seconds=None):
            return NS(content=[NS(type="text", text=f"{name} {arguments}")], is_error=False)

    monkeypatch.setattr(victor_mcp, "_import_mcp", lambda: NS(Client=Client))
    return log


async def test_concurrent_first_calls_share_one_connection(monkeypatch) -> None:
    log = fake_mcp(monkeypatch)
    server = MCPServerTools("http://fake/mcp")
    results = await asyncio.gather(*(server.call("add", {"i": i}) for i in range(5)))
    assert results == [f"add {{'i': {i}}}" for i in range(5)] and log == ["open"]
    await server.aclose()
    assert log == ["open", "cleaned"]


async def test_a_cancelled_connect_does_not_cancel_the_shared_attempt(monkeypatch) -> None:
    fake_mcp(monkeypatch, enter_delay=0.2)
    server = MCPServerTools("http://fake/mcp")
    first = asyncio.create_task(server.connect())
    second = asyncio.create_task(server.list_tools())
    await asyncio.sleep(0.05)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert [t.name for t in await second] == ["add"]
    await server.aclose()


async def test_connect_timeout_fails_every_waiter(monkeypatch) -> None:
    fake_mcp(monkeypatch, enter_delay=10)
    server = MCPServerTools("http://fake/mcp", connect_timeout=0.1)
    results = await asyncio.gather(server.connect(), server.connect(), return_exceptions=True)
    assert all(isinstance(r, MCPError) for r in results) and not server.connected


async def test_aclose_while_connecting_stops_the_attempt_at_once(monkeypatch) -> None:
    fake_mcp(monkeypatch, enter_delay=10)
    server = MCPServerTools("http://fake/mcp", close_timeout=10)
    waiting = asyncio.create_task(server.connect())
    await asyncio.sleep(0.05)
    await asyncio.wait_for(server.aclose(), 1)
    with pytest.raises(MCPError, match="closed while connecting"):
        await waiting


async def test_transport_factory_builds_a_transport_per_connection(monkeypatch) -> None:
    log = fake_mcp(monkeypatch)
    made: list[object] = []

    def factory() -> object:
        made.append(object())
        return made[-1]

    server = MCPServerTools(transport_factory=factory)
    for _ in range(2):
        await server.connect()
        assert server._client.target is made[-1]
        await server.aclose()
    assert len(made) == 2 and log == ["open", "cleaned"] * 2


async def test_aclose_cancels_a_slow_close_and_waits_for_its_cleanup(monkeypatch) -> None:
    log = fake_mcp(monkeypatch, exit_delay=10)
    server = MCPServerTools("http://fake/mcp", close_timeout=0.1)
    await server.connect()
    task = server._task
    await asyncio.wait_for(server.aclose(), 2)
    assert task.done() and log == ["open", "cleaned"]


async def test_aclose_cancelled_cleans_up_then_re_raises(monkeypatch) -> None:
    log = fake_mcp(monkeypatch, exit_delay=10)
    server = MCPServerTools("http://fake/mcp", close_timeout=5)
    await server.connect()
    task = server._task
    closing = asyncio.create_task(server.aclose())
    await asyncio.sleep(0.05)
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    assert task.done() and log == ["open", "cleaned"]


async def test_clashing_tool_names_get_a_hash_suffix(monkeypatch) -> None:
    long_a, long_b = "x" * 70 + "_a", "x" * 70 + "_b"
    fake_mcp(monkeypatch, names=("a.b", "a_b", long_a, long_b, "plain"))
    async with MCPServerTools("http://fake/mcp") as server:
        tools = await server.list_tools()
        names = [t.name for t in tools]
        assert len(set(names)) == 5 and all(len(n) <= 64 for n in names)
        assert names[1] == "a_b" and names[4] == "plain"  # unchanged names are kept
        assert names[0].startswith("a_b_") and names[2].startswith("x" * 50)
        assert await tools[0].fn() == "a.b {}"  # still calls the server's own name
        assert [t.name for t in await server.list_tools()] == names  # stable


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
