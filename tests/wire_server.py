"""A scriptable HTTP server speaking the OpenAI and Anthropic wire protocols.

Provider tests run the official SDKs over real HTTP against this server on 127.0.0.1,
so what is tested is what the SDKs really send and parse; nothing inside them is mocked.

Usage (a module-scoped fixture usually holds the ``with``, and calls ``reset()`` per test)::

    with WireServer() as server:
        server.enqueue(rate_limited(retry_after="2"), Reply(text="hi"))
        provider = OpenAIProvider(api_key="k", base_url=server.openai_base_url)
        ...
        assert server.requests[-1].body["messages"] == [...]

Each request takes the next scripted behaviour (``Reply``, ``Status``, ``Raw``,
``Delay``) from the queue of its protocol, or from the shared queue. With nothing
scripted, the server answers 400 "no scripted response left", which the providers do
not retry, so a test that forgot to script a call fails at once with a clear message.

Endpoints: ``POST /v1/chat/completions`` (OpenAI: JSON, or SSE ``data:`` lines ending
with ``data: [DONE]``) and ``POST /v1/messages`` (Anthropic: JSON, or SSE with ``event:``
names). Both stream when the request body has ``"stream": true``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

Protocol = Literal["openai", "anthropic"]


# -- behaviours ---------------------------------------------------------------------------


@dataclass
class WireToolCall:
    """A tool call in a scripted answer; ``arguments`` as text may be invalid JSON."""

    name: str
    arguments: str | dict[str, Any] = field(default_factory=dict)
    id: str | None = None

    def text(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments)


@dataclass
class Reply:
    """A successful answer, rendered in the protocol (and JSON or SSE) of the request.

    ``input_tokens`` are the uncached prompt tokens and ``cached_tokens`` the cache reads
    (OpenAI's ``prompt_tokens`` is their sum). Streaming splits text and tool arguments
    into pieces of ``chunk_size`` characters; ``interleave`` mixes the argument pieces of
    several tool calls (OpenAI); ``cut_after`` drops the connection after that many
    events; ``end_after`` ends the stream cleanly after that many events, without its
    final events (a proxy giving up); ``error_after`` sends an in-stream error event of
    ``error_type`` instead.

    OpenAI tool-call pieces carry their call's position as ``index``; ``tool_call_index``
    ``"zero"`` numbers every call 0 (Ollama) and ``"omit"`` leaves the index out (some
    gateways). ``whole_tool_calls`` sends every call in one piece, all in one event, as
    Ollama does.
    """

    text: str = ""
    tool_calls: list[WireToolCall] = field(default_factory=list)
    input_tokens: int = 12
    output_tokens: int = 7
    cached_tokens: int = 0
    finish_reason: str | None = None
    model: str | None = None
    chunk_size: int = 3
    interleave: bool = False
    cut_after: int | None = None
    end_after: int | None = None
    error_after: int | None = None
    error_type: str = "overloaded_error"
    tool_call_index: Literal["position", "zero", "omit"] = "position"
    whole_tool_calls: bool = False


@dataclass
class Status:
    """An HTTP error with the protocol's error body."""

    status: int
    message: str = "scripted error"
    headers: dict[str, str] = field(default_factory=dict)
    error_type: str | None = None
    code: str | None = None  # OpenAI's error code, e.g. "context_length_exceeded"


@dataclass
class Raw:
    """A verbatim body, e.g. something that is not JSON at all."""

    body: str
    status: int = 200
    content_type: str = "application/json"


@dataclass
class Delay:
    """Wait ``seconds`` before answering with ``then`` (for timeout tests)."""

    seconds: float
    then: Reply | Status | Raw = field(default_factory=lambda: Reply(text="too late"))


Behaviour = Reply | Status | Raw | Delay


def rate_limited(
    retry_after: str | None = "0", *, retry_after_ms: str | None = None, status: int = 429
) -> Status:
    headers = {}
    if retry_after is not None:
        headers["retry-after"] = retry_after
    if retry_after_ms is not None:
        headers["retry-after-ms"] = retry_after_ms
    return Status(status, "rate limited", headers=headers)


def server_error(status: int = 500) -> Status:
    return Status(status, "internal error")


def unauthorized() -> Status:
    return Status(401, "invalid x-api-key")


def malformed() -> Raw:
    return Raw('{"id": "broken", "choices": [ {"message": ')


def slow(seconds: float, then: Reply | Status | Raw | None = None) -> Delay:
    return Delay(seconds, then or Reply(text="too late"))


_DEFAULT_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}


@dataclass
class RecordedRequest:
    """One request as the server received it; header names are lower-case."""

    protocol: Protocol
    path: str
    headers: dict[str, str]
    body: Any


# -- rendering ----------------------------------------------------------------------------


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), max(1, size))]


def _call_id(protocol: Protocol, call: WireToolCall, index: int) -> str:
    return call.id or (f"call_{index}" if protocol == "openai" else f"toolu_{index}")


def _tool_use(call: WireToolCall, index: int, value: Any) -> dict[str, Any]:
    return {
        "type": "tool_use",
        "id": _call_id("anthropic", call, index),
        "name": call.name,
        "input": value,
    }


def _openai_usage(reply: Reply) -> dict[str, Any]:
    prompt = reply.input_tokens + reply.cached_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": reply.output_tokens,
        "total_tokens": prompt + reply.output_tokens,
        "prompt_tokens_details": {"cached_tokens": reply.cached_tokens},
    }


def _anthropic_usage(reply: Reply) -> dict[str, Any]:
    return {
        "input_tokens": reply.input_tokens,
        "output_tokens": reply.output_tokens,
        "cache_read_input_tokens": reply.cached_tokens,
        "cache_creation_input_tokens": 0,
    }


def _openai_json(reply: Reply, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": _call_id("openai", call, i),
                "type": "function",
                "function": {"name": call.name, "arguments": call.text()},
            }
            for i, call in enumerate(reply.tool_calls)
        ]
    finish = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
    return {
        "id": "chatcmpl-wire",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": _openai_usage(reply),
    }


def _openai_events(reply: Reply, model: str, include_usage: bool) -> list[str]:
    base = {"id": "chatcmpl-wire", "object": "chat.completion.chunk", "created": 0, "model": model}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    def indexed(part: dict[str, Any], i: int) -> dict[str, Any]:
        if reply.tool_call_index == "omit":
            return part
        return {"index": 0 if reply.tool_call_index == "zero" else i, **part}

    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": piece}) for piece in _pieces(reply.text, reply.chunk_size)]
    per_call: list[list[dict[str, Any]]] = []
    for i, call in enumerate(reply.tool_calls):
        whole = reply.whole_tool_calls
        function = {"name": call.name, "arguments": call.text() if whole else ""}
        head = {"id": _call_id("openai", call, i), "type": "function", "function": function}
        pieces = [] if whole else _pieces(call.text(), reply.chunk_size)
        tail = [indexed({"function": {"arguments": piece}}, i) for piece in pieces]
        per_call.append([indexed(head, i), *tail])
    if reply.whole_tool_calls and per_call:
        chunks.append(chunk({"tool_calls": [parts[0] for parts in per_call]}))
    elif reply.interleave:
        while any(per_call):
            for parts in per_call:
                if parts:
                    chunks.append(chunk({"tool_calls": [parts.pop(0)]}))
    else:
        chunks += [chunk({"tool_calls": [part]}) for parts in per_call for part in parts]
    finish = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
    chunks.append(chunk({}, finish))
    if include_usage:
        chunks.append({**base, "choices": [], "usage": _openai_usage(reply)})
    return [f"data: {json.dumps(c)}\n\n" for c in chunks] + ["data: [DONE]\n\n"]


def _anthropic_json(reply: Reply, model: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if reply.text:
        content.append({"type": "text", "text": reply.text})
    for i, call in enumerate(reply.tool_calls):
        try:
            value: Any = json.loads(call.text())
        except ValueError:
            value = call.text()
        content.append(_tool_use(call, i, value))
    return {
        "id": "msg_wire",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reply.finish_reason or ("tool_use" if reply.tool_calls else "end_turn"),
        "stop_sequence": None,
        "usage": _anthropic_usage(reply),
    }


def _anthropic_events(reply: Reply, model: str) -> list[str]:
    events: list[dict[str, Any]] = []
    start_usage = {**_anthropic_usage(reply), "output_tokens": 1}
    message = {**_anthropic_json(reply, model), "content": [], "stop_reason": None}
    events.append({"type": "message_start", "message": {**message, "usage": start_usage}})
    events.append({"type": "ping"})
    index = 0
    if reply.text:
        block = {"type": "text", "text": ""}
        events.append({"type": "content_block_start", "index": index, "content_block": block})
        for piece in _pieces(reply.text, reply.chunk_size):
            delta = {"type": "text_delta", "text": piece}
            events.append({"type": "content_block_delta", "index": index, "delta": delta})
        events.append({"type": "content_block_stop", "index": index})
        index += 1
    for i, call in enumerate(reply.tool_calls):
        block = _tool_use(call, i, {})
        events.append({"type": "content_block_start", "index": index, "content_block": block})
        for piece in _pieces(call.text(), reply.chunk_size):
            delta = {"type": "input_json_delta", "partial_json": piece}
            events.append({"type": "content_block_delta", "index": index, "delta": delta})
        events.append({"type": "content_block_stop", "index": index})
        index += 1
    stop = reply.finish_reason or ("tool_use" if reply.tool_calls else "end_turn")
    delta = {"stop_reason": stop, "stop_sequence": None}
    usage = {"output_tokens": reply.output_tokens}
    events.append({"type": "message_delta", "delta": delta, "usage": usage})
    events.append({"type": "message_stop"})
    return [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events]


def _error_body(
    protocol: Protocol, message: str, error_type: str, code: str | None = None
) -> dict[str, Any]:
    if protocol == "anthropic":
        return {"type": "error", "error": {"type": error_type, "message": message}}
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


def _stream_error(protocol: Protocol, error_type: str) -> str:
    body = _error_body(protocol, "scripted stream failure", error_type)
    if protocol == "anthropic":
        return f"event: error\ndata: {json.dumps(body)}\n\n"
    return f"data: {json.dumps(body)}\n\n"


class _CutConnection(Exception):
    """Raised inside a streaming body to make the server drop the connection."""


# -- the server ---------------------------------------------------------------------------


class WireServer:
    """The scriptable server, run by uvicorn in a daemon thread on an ephemeral port."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._queues: dict[Protocol | None, deque[Behaviour]] = {
            None: deque(),
            "openai": deque(),
            "anthropic": deque(),
        }
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._openai, methods=["POST"]),
                Route("/v1/messages", self._anthropic, methods=["POST"]),
            ]
        )

    # -- scripting ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    def enqueue(self, *behaviours: Behaviour, protocol: Protocol | None = None) -> None:
        """Script the next answers, for one protocol or (by default) for any request."""
        with self._lock:
            self._queues[protocol].extend(behaviours)

    def reset(self) -> None:
        with self._lock:
            for queue in self._queues.values():
                queue.clear()
            self.requests.clear()

    def _next(self, protocol: Protocol) -> Behaviour:
        with self._lock:
            for queue in (self._queues[protocol], self._queues[None]):
                if queue:
                    return queue.popleft()
        return Status(400, "wire server: no scripted response left")

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> WireServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_config=None,
            log_level="critical",
            access_log=False,
            lifespan="off",
            ws="none",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="wire-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("wire server failed to start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is not None:
            # force_exit: do not wait for answers still in flight (a slow one would hold us).
            self._server.force_exit = self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> WireServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- request handling --------------------------------------------------------------

    async def _openai(self, request: Request) -> Response:
        return await self._handle(request, "openai")

    async def _anthropic(self, request: Request) -> Response:
        return await self._handle(request, "anthropic")

    async def _handle(self, request: Request, protocol: Protocol) -> Response:
        raw = await request.body()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self._lock:
            self.requests.append(RecordedRequest(protocol, request.url.path, headers, body))
        return await self._respond(self._next(protocol), protocol, body)

    async def _respond(self, behaviour: Behaviour, protocol: Protocol, body: Any) -> Response:
        if isinstance(behaviour, Delay):
            await asyncio.sleep(behaviour.seconds)  # stop() does not wait for it
            return await self._respond(behaviour.then, protocol, body)
        if isinstance(behaviour, Status):
            error_type = behaviour.error_type or _DEFAULT_ERROR_TYPES.get(
                behaviour.status, "api_error"
            )
            return JSONResponse(
                _error_body(protocol, behaviour.message, error_type, behaviour.code),
                status_code=behaviour.status,
                headers=behaviour.headers,
            )
        if isinstance(behaviour, Raw):
            return Response(
                behaviour.body, status_code=behaviour.status, media_type=behaviour.content_type
            )
        request = body if isinstance(body, dict) else {}
        model = behaviour.model or str(request.get("model") or "wire-model")
        if not request.get("stream"):
            render = _openai_json if protocol == "openai" else _anthropic_json
            return JSONResponse(render(behaviour, model))
        if protocol == "openai":
            include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
            events = _openai_events(behaviour, model, include_usage)
        else:
            events = _anthropic_events(behaviour, model)
        return StreamingResponse(
            self._sse(events, behaviour, protocol), media_type="text/event-stream"
        )

    async def _sse(self, events: list[str], reply: Reply, protocol: Protocol) -> AsyncIterator[str]:
        for number, event in enumerate(events):
            if reply.error_after is not None and number == reply.error_after:
                yield _stream_error(protocol, reply.error_type)
                return
            if reply.cut_after is not None and number == reply.cut_after:
                raise _CutConnection
            if reply.end_after is not None and number == reply.end_after:
                return
            yield event
            await asyncio.sleep(0)
