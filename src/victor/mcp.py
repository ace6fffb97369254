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
import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from victor.errors import VictorError
from victor.protocols import Tool

logger = logging.getLogger(__name__)

__all__ = ["MCPError", "MCPServerTools", "MCPToolError", "load_mcp_tools"]


class MCPError(VictorError, RuntimeError):
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

    ``target`` is a URL (streamable HTTP) or an ``mcp.StdioServerParameters``; both are
    reconnected from scratch after a drop. For any other ``mcp`` client transport pass
    ``transport_factory``, a zero-argument callable returning a fresh transport for each
    connection: transports are single-use async context managers, so a transport object
    given as ``target`` works for one connection only and cannot reconnect.

    ``prefix`` is prepended to tool names (to keep two servers' ``search`` apart);
    ``include``/``exclude`` filter by the server's names; ``cost_tier``, ``domain`` and
    ``tags`` are set on every tool. ``call_timeout`` bounds one tool call (seconds),
    ``connect_timeout`` the connection, ``close_timeout`` a graceful close (after which
    the connection is cancelled).
    """

    def __init__(
        self,
        target: Any = None,
        *,
        transport_factory: Callable[[], Any] | None = None,
        name: str | None = None,
        prefix: str = "",
        include: Iterable[str] | None = None,
        exclude: Iterable[str] = (),
        cost_tier: str = "free",
        domain: str | None = None,
        tags: Sequence[str] = (),
        call_timeout: float | None = 60.0,
        connect_timeout: float = 30.0,
        close_timeout: float = 10.0,
    ) -> None:
        if target is None and transport_factory is None:
            raise ValueError("MCPServerTools needs a target or a transport_factory")
        self.target = target
        self.transport_factory = transport_factory
        self.name = name or _describe(target if target is not None else transport_factory)
        self.prefix = prefix
        self.include = set(include) if include is not None else None
        self.exclude = set(exclude)
        self.cost_tier = cost_tier
        self.domain = domain
        self.tags = list(tags)
        self.call_timeout = call_timeout
        self.connect_timeout = connect_timeout
        self.close_timeout = close_timeout
        self._client: Any = None
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None
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
        cls,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        read_timeout: float = 300.0,
        **options: Any,
    ) -> MCPServerTools:
        """A server at a streamable HTTP endpoint (``.../mcp``); ``headers`` are sent
        with every request (for example ``Authorization``). Each connection opens, and
        closes, its own HTTP client; ``timeout``/``read_timeout`` are the SDK's defaults
        (streams stay open, hence the long read)."""
        if not headers:
            return cls(url, **options)
        fixed = dict(headers)
        options.setdefault("name", url)
        return cls(
            transport_factory=lambda: _http_transport(url, fixed, (timeout, read_timeout)),
            **options,
        )

    # -- connection ----------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._client is not None

    async def connect(self) -> None:
        """Open the connection (idempotent; concurrent callers share one attempt). Raises
        :class:`MCPError` when it fails. A caller that is cancelled while waiting does
        not cancel the attempt the others are waiting on."""
        task, ready = self._task, self._ready
        if task is None or ready is None or task.done():
            loop = asyncio.get_running_loop()
            ready = self._ready = loop.create_future()
            ready.add_done_callback(_retrieve)
            stop = self._stop = asyncio.Event()
            task = self._task = loop.create_task(self._serve(ready, stop), name=f"mcp:{self.name}")
            timer = loop.call_later(self.connect_timeout, self._give_up, ready, task)
            ready.add_done_callback(lambda _: timer.cancel())
        try:
            await asyncio.shield(ready)
        except asyncio.CancelledError:
            if not ready.cancelled():
                raise  # this caller was cancelled; the attempt goes on for the others
            error: BaseException = MCPError("connection attempt cancelled")
        except Exception as exc:
            error = exc
        else:
            if self._client is None:
                raise MCPError(f"MCP server {self.name} disconnected")
            return
        if self._task is task:
            await self.aclose()
        if isinstance(error, MCPError):
            raise error
        raise MCPError(f"cannot connect to MCP server {self.name}: {error!r}") from error

    def _give_up(self, ready: asyncio.Future[None], task: asyncio.Task[None]) -> None:
        if not ready.done():
            ready.set_exception(TimeoutError(f"no answer within {self.connect_timeout} s"))
            task.cancel()

    async def _serve(self, ready: asyncio.Future[None], stop: asyncio.Event) -> None:
        """The connection's lifetime: transport (built here, so each connection gets a
        fresh one) and session are entered and left in this one task."""
        client = None
        try:
            mcp = _import_mcp()
            target = self.transport_factory() if self.transport_factory else self.target
            async with mcp.Client(target) as client:
                self._client = client
                if not ready.done():
                    ready.set_result(None)
                await stop.wait()
        except BaseException as exc:
            if not ready.done():
                if isinstance(exc, asyncio.CancelledError):
                    ready.set_exception(MCPError("connection closed while opening"))
                else:
                    ready.set_exception(exc)
            elif not isinstance(exc, asyncio.CancelledError):
                logger.warning("MCP server %s disconnected: %r", self.name, exc)
            if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt, SystemExit)):
                raise
        finally:
            if client is not None and self._client is client:
                self._client = None

    async def aclose(self) -> None:
        """Close the connection (stops a stdio server's process). Waits up to
        ``close_timeout`` for a graceful close, then cancels the connection and waits
        for its cleanup. Cancelling the caller still cleans up, then re-raises."""
        task, self._task = self._task, None
        if task is None:
            return
        ready = self._ready
        if ready is not None and not ready.done():
            # Still connecting: nothing to close gracefully, stop the attempt now.
            ready.set_exception(MCPError(f"MCP server {self.name} closed while connecting"))
            task.cancel()
        if self._stop is not None:
            self._stop.set()
        try:
            done, _ = await asyncio.wait({task}, timeout=self.close_timeout)
            if not done:
                task.cancel()
                await asyncio.wait({task}, timeout=self.close_timeout)
        except asyncio.CancelledError:
            task.cancel()
            await asyncio.wait({task}, timeout=self.close_timeout)
            raise
        finally:
            if task.done() and not task.cancelled() and task.exception() is not None:
                logger.debug("MCP server %s closed with %r", self.name, task.exception())

    async def __aenter__(self) -> MCPServerTools:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _session(self) -> Any:
        """The connected client, connecting first when needed."""
        client = self._client
        if client is None:
            await self.connect()
            client = self._client
            if client is None:
                raise MCPError(f"MCP server {self.name} is not connected")
        return client

    # -- tools ---------------------------------------------------------------------

    async def list_tools(self) -> list[Tool]:
        """The server's tools (every page) as Victor tools, connected on first use.
        Names are made provider-safe; when two end up equal (``a.b`` and ``a_b``, or
        long names sharing their first 64 characters) the altered ones get a short
        hash of their server name, so registering them all never clashes."""
        client = await self._session()
        specs: dict[str, Any] = {}
        cursor: str | None = None
        for _ in range(1000):  # bounded: a paginator that never ends cannot hang us
            page = await client.list_tools(cursor=cursor)
            for spec in page.tools:
                remote = str(spec.name)
                if self.include is not None and remote not in self.include:
                    continue
                if remote in self.exclude:
                    continue
                if remote in specs:
                    logger.warning("MCP server %s lists %r twice", self.name, remote)
                    continue
                specs[remote] = spec
            cursor = page.next_cursor
            if not cursor:
                break
        names = _unique_names([self.prefix + remote for remote in specs])
        return [self._to_tool(spec, name) for spec, name in zip(specs.values(), names, strict=True)]

    async def call(self, name: str, arguments: Mapping[str, Any] | None = None) -> str:
        """Call the server's tool ``name``; its output as text. Raises
        :class:`MCPToolError` when the tool reports an error."""
        client = await self._session()
        try:
            result = await client.call_tool(
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

    def _to_tool(self, spec: Any, name: str) -> Tool:
        remote = str(spec.name)
        schema = dict(spec.input_schema or {}) or {"type": "object", "properties": {}}
        schema.pop("$schema", None)
        annotations = spec.annotations.model_dump(exclude_none=True) if spec.annotations else {}
        return Tool(
            name=name,
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


def _hashed_name(raw: str, digits: int) -> str:
    digest = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:digits]
    return f"{_tool_name(raw)[: 63 - digits].rstrip('_-') or 'tool'}_{digest}"


def _unique_names(raw: Sequence[str]) -> list[str]:
    """Provider-safe, distinct names for distinct ``raw`` names. A name that cleaning
    left as it was keeps it; the others that clash get ``_<hash of the raw name>``
    (stable across listings, unlike a counter)."""
    out = [_tool_name(r) for r in raw]
    for digits in (6, 16):  # 16: a suffixed name met another one
        counts = Counter(out)
        if len(counts) == len(out):
            return out
        for i, (r, name) in enumerate(zip(raw, out, strict=True)):
            if counts[name] > 1 and name != r:
                out[i] = _hashed_name(r, digits)
    if len(set(out)) < len(out):
        raise MCPError(f"MCP tool names clash after cleaning: {sorted(raw)}")
    return out


@asynccontextmanager
async def _http_transport(
    url: str, headers: dict[str, str], timeouts: tuple[float, float]
) -> AsyncIterator[Any]:
    """A streamable HTTP transport with its own HTTP client, closed with it."""
    from mcp.client.streamable_http import streamable_http_client

    async with (
        _http_client(headers, *timeouts) as client,
        streamable_http_client(url, http_client=client) as streams,
    ):
        yield streams


def _http_client(headers: dict[str, str], timeout: float, read_timeout: float) -> Any:
    import httpx2  # the mcp SDK's HTTP client

    return httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(timeout, read=read_timeout))


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a future's exception as seen (its waiters handle it, or are gone)."""
    if not future.cancelled():
        future.exception()


def _describe(target: Any) -> str:
    if isinstance(target, str):
        return target
    if callable(target) and getattr(target, "__name__", ""):
        return str(target.__name__)
    command = getattr(target, "command", None)
    if command:
        return " ".join([Path(command).name, *getattr(target, "args", [])[:1]])
    return type(target).__name__
