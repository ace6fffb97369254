"""Tools from MCP servers, over stdio or streamable HTTP, with the official ``mcp`` SDK.

```python
from victor.mcp import MCPServerTools

async with MCPServerTools.stdio("python", ["my_server.py"]) as server:
    orchestrator.register_tools(await server.list_tools())
    await orchestrator.chat("...")

async with MCPServerTools.http("http://127.0.0.1:8000/mcp") as server:
    tools = await server.list_tools()
```

Each MCP tool becomes a :class:`victor.protocols.Tool` (name, description, JSON Schema
of its input) whose ``fn`` calls the server, so tool selection and the agent loop treat
it like any local tool. The connection lives in a background task owned by this object:
the SDK's transports are anyio task-scoped, and this keeps calls working from any task
(the agent loop runs tools concurrently). ``mcp`` is imported on connect, not on import.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from victor.protocols import Tool

logger = logging.getLogger(__name__)

__all__ = ["MCPError", "MCPServerTools", "MCPToolError", "load_mcp_tools"]


class MCPError(RuntimeError):
    """The MCP server could not be reached or answered with a protocol error."""


class MCPToolError(RuntimeError):
    """The MCP tool ran and reported an error (``isError``); the message is its output."""


def _import_mcp() -> Any:
    try:
        import mcp
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("MCP tools need the mcp SDK: pip install 'mcp>=2'") from exc
    return mcp


class MCPServerTools:
    """A connection to one MCP server whose tools become Victor ``Tool`` objects.

    ``target`` is a URL (streamable HTTP), an ``mcp.StdioServerParameters``, or any
    ``mcp`` client transport. ``prefix`` is prepended to tool names (to keep two
    servers' ``search`` apart); ``include``/``exclude`` filter by the server's names;
    ``cost_tier``, ``domain`` and ``tags`` are set on every tool. ``call_timeout``
    bounds one tool call (seconds), ``connect_timeout`` the connection.
    """

    def __init__(
        self,
        target: Any,
        *,
        name: str | None = None,
        prefix: str = "",
        include: Iterable[str] | None = None,
        exclude: Iterable[str] = (),
        cost_tier: str = "free",
        domain: str | None = None,
        tags: Sequence[str] = (),
        call_timeout: float | None = 60.0,
        connect_timeout: float = 30.0,
    ) -> None:
        self.target = target
        self.name = name or _describe(target)
        self.prefix = prefix
        self.include = set(include) if include is not None else None
        self.exclude = set(exclude)
        self.cost_tier = cost_tier
        self.domain = domain
        self.tags = list(tags)
        self.call_timeout = call_timeout
        self.connect_timeout = connect_timeout
        self._client: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None

    @classmethod
    def stdio(
        cls,
        command: str,
        args: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        **options: Any,
    ) -> MCPServerTools:
        """A server started as a subprocess, spoken to over its stdin/stdout."""
        mcp = _import_mcp()
        params = mcp.StdioServerParameters(
            command=command, args=list(args), env=dict(env) if env else None, cwd=cwd
        )
        options.setdefault("name", Path(command).name + (f" {args[0]}" if args else ""))
        return cls(params, **options)

    @classmethod
    def http(
        cls, url: str, *, headers: Mapping[str, str] | None = None, **options: Any
    ) -> MCPServerTools:
        """A server at a streamable HTTP endpoint (``.../mcp``); ``headers`` are sent
        with every request (for example ``Authorization``)."""
        if not headers:
            return cls(url, **options)
        import httpx2  # the mcp SDK's HTTP client
        from mcp.client.streamable_http import streamable_http_client

        # The SDK's own defaults: 30 s to connect/write, 300 s to read (streams stay open).
        client = httpx2.AsyncClient(headers=dict(headers), timeout=httpx2.Timeout(30.0, read=300.0))
        options.setdefault("name", url)
        return cls(streamable_http_client(url, http_client=client), **options)

    # -- connection ----------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._client is not None

    async def connect(self) -> None:
        """Open the connection (idempotent); raises :class:`MCPError` when it fails."""
        if self._task is not None and not self._task.done():
            return
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._serve(ready), name=f"mcp:{self.name}")
        try:
            await asyncio.wait_for(asyncio.shield(ready), self.connect_timeout)
        except BaseException as exc:
            await self.aclose()
            if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt)):
                raise
            raise MCPError(f"cannot connect to MCP server {self.name}: {exc!r}") from exc

    async def _serve(self, ready: asyncio.Future[None]) -> None:
        mcp = _import_mcp()
        try:
            async with mcp.Client(self.target) as client:
                self._client = client
                ready.set_result(None)
                assert self._stop is not None
                await self._stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            elif not isinstance(exc, asyncio.CancelledError):
                logger.warning("MCP server %s disconnected: %r", self.name, exc)
            if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt, SystemExit)):
                raise
        finally:
            self._client = None

    async def aclose(self) -> None:
        """Close the connection (stops a stdio server's process)."""
        task, self._task = self._task, None
        if task is None:
            return
        if self._stop is not None:
            self._stop.set()
        try:
            await asyncio.wait_for(task, 10.0)
        except (TimeoutError, asyncio.CancelledError):
            task.cancel()
        except Exception as exc:
            logger.debug("MCP server %s closed with %r", self.name, exc)

    async def __aenter__(self) -> MCPServerTools:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- tools ---------------------------------------------------------------------

    async def list_tools(self) -> list[Tool]:
        """The server's tools (every page) as Victor tools, connected on first use."""
        await self.connect()
        out: list[Tool] = []
        cursor: str | None = None
        for _ in range(1000):  # bounded: a paginator that never ends cannot hang us
            page = await self._client.list_tools(cursor=cursor)
            for spec in page.tools:
                if self.include is not None and spec.name not in self.include:
                    continue
                if spec.name in self.exclude:
                    continue
                out.append(self._to_tool(spec))
            cursor = page.next_cursor
            if not cursor:
                break
        return out

    async def call(self, name: str, arguments: Mapping[str, Any] | None = None) -> str:
        """Call the server's tool ``name``; its output as text. Raises
        :class:`MCPToolError` when the tool reports an error."""
        if self._client is None:
            await self.connect()
        try:
            result = await self._client.call_tool(
                name, dict(arguments or {}), read_timeout_seconds=self.call_timeout
            )
        except Exception as exc:
            if type(exc).__name__ == "MCPError" or isinstance(exc, OSError):
                raise MCPError(f"{self.name}: calling {name!r} failed: {exc}") from exc
            raise
        text = result_text(result)
        if getattr(result, "is_error", False):
            raise MCPToolError(text or f"{name} failed")
        return text

    def _to_tool(self, spec: Any) -> Tool:
        remote = str(spec.name)
        schema = dict(spec.input_schema or {}) or {"type": "object", "properties": {}}
        schema.pop("$schema", None)
        annotations = spec.annotations.model_dump(exclude_none=True) if spec.annotations else {}
        return Tool(
            name=_tool_name(self.prefix + remote),
            description=(spec.description or getattr(spec, "title", None) or "").strip(),
            parameters=schema,
            cost_tier=self.cost_tier,  # type: ignore[arg-type]
            domain=self.domain,
            tags=[*self.tags, "mcp"],
            metadata={"mcp_server": self.name, "mcp_tool": remote, "annotations": annotations},
            fn=self._caller(remote),
        )

    def _caller(self, remote: str) -> Callable[..., Any]:
        async def call_mcp_tool(**arguments: Any) -> str:
            return await self.call(remote, arguments)

        call_mcp_tool.__name__ = _tool_name(remote)
        return call_mcp_tool


async def load_mcp_tools(target: Any, **options: Any) -> tuple[list[Tool], MCPServerTools]:
    """Connect and list in one step; returns the tools and the connection to close
    (``await server.aclose()``) when done."""
    server = target if isinstance(target, MCPServerTools) else MCPServerTools(target, **options)
    tools = await server.list_tools()
    return tools, server


def result_text(result: Any) -> str:
    """A tool result as the text a model reads: text blocks joined, structured content
    as JSON when there is no text, other media as short placeholders."""
    parts: list[str] = []
    for block in getattr(result, "content", None) or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind == "resource":
            resource = block.resource
            text = getattr(resource, "text", None)
            parts.append(text if text is not None else f"[resource {resource.uri}]")
        elif kind == "resource_link":
            parts.append(f"[resource {block.uri}]")
        else:
            parts.append(f"[{kind} {getattr(block, 'mime_type', '')}]".replace(" ]", "]"))
    structured = getattr(result, "structured_content", None)
    if not parts and structured is not None:
        return json.dumps(structured, ensure_ascii=False, default=str)
    return "\n".join(parts)


_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]+")


def _tool_name(name: str) -> str:
    """Names every provider accepts: letters, digits, ``_`` and ``-``, at most 64."""
    cleaned = _NAME_CHARS.sub("_", name).strip("_") or "tool"
    return cleaned[:64]


def _describe(target: Any) -> str:
    if isinstance(target, str):
        return target
    command = getattr(target, "command", None)
    if command:
        return " ".join([Path(command).name, *getattr(target, "args", [])[:1]])
    return type(target).__name__
