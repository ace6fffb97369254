"""Anthropic's Messages API through the official ``anthropic`` SDK.

The Messages API differs from Chat Completions in ways the conversion below absorbs:
the system prompt is a request parameter rather than a message, tool calls and tool
results are content blocks (``tool_use`` in the assistant turn, ``tool_result`` in the
next user turn), ``max_tokens`` is mandatory, and cached prompt tokens are reported apart
from the other input tokens.

The SDK is imported when a provider is constructed, not when this module is imported.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from victor.errors import ProviderAuthError, ProviderConnectionError, ProviderResponseError
from victor.protocols.messages import ChatResponse, Message, StreamChunk, ToolCall, Usage
from victor.protocols.tools import Tool
from victor.providers._retry import RetryPolicy
from victor.providers._sdk import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    SDKProvider,
    parse_tool_arguments,
    sdk_accepts,
    sdk_timeout,
    split_options,
)

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic
    from httpx2 import Timeout

__all__ = ["AnthropicProvider"]

_AUTH_HINT = " (check the api_key argument or the ANTHROPIC_API_KEY environment variable)"

# Anthropic's stop reasons in the Chat Completions vocabulary the rest of Victor uses, so
# code that checks ``finish_reason == "length"`` works whichever provider answered.
_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


class AnthropicProvider(SDKProvider):
    """A Claude model served over Anthropic's Messages API.

    ``api_key`` defaults to ``ANTHROPIC_API_KEY``; ``base_url`` to the SDK's default
    (``ANTHROPIC_BASE_URL``, then the public API). ``default_max_tokens`` fills the
    mandatory ``max_tokens`` when a call gives none. ``client`` takes a ready
    ``AsyncAnthropic``; it is used through a copy with SDK retries off and is left open by
    :meth:`aclose`. Failed calls are retried by ``retry_policy`` (default:
    ``RetryPolicy(max_retries=max_retries)``), never by the SDK. ``timeout`` bounds the
    wait for an answer (600 s; for a stream, between two events) and ``connect_timeout``
    reaching the server (5 s); an ``httpx2.Timeout`` sets every phase at once.

    ``usage.input_tokens`` counts every prompt token, cached or not, and
    ``usage.cached_input_tokens`` the cache reads among them, as OpenAI reports them, so
    cost accounting reads both providers alike.
    """

    default_model = "claude-sonnet-4-5"

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float | Timeout | None = DEFAULT_READ_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        max_retries: int = 3,
        default_max_tokens: int = 4096,
        default_headers: Mapping[str, str] | None = None,
        client: AsyncAnthropic | None = None,
        name: str = "anthropic",
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self.name = name
        self._auth_hint = _AUTH_HINT
        self._retry = retry_policy or RetryPolicy(max_retries=max_retries)
        self.default_max_tokens = default_max_tokens
        key = api_key or os.environ.get("ANTHROPIC_API_KEY")
        if client is None and not key:
            raise ProviderAuthError(
                "no Anthropic API key: pass api_key=... or set the ANTHROPIC_API_KEY "
                "environment variable",
                provider=name,
            )

        import anthropic  # here, not at module level: it takes over a second to import

        self._sdk = anthropic
        if client is not None:
            self._client = self._without_sdk_retries(client)
            self._owns_client = False
        else:
            # An explicit key also stops the SDK from looking for profiles on disk.
            self._client = anthropic.AsyncAnthropic(
                api_key=key,
                base_url=base_url,
                timeout=sdk_timeout(anthropic, timeout, connect_timeout),
                max_retries=0,
                default_headers=default_headers,
            )
            self._owns_client = True

    def _create(self) -> Callable[..., Any]:
        return self._client.messages.create

    def _parse(self, result: Any, model: str) -> ChatResponse:
        return _parse_message(result, model)

    def _assembler(self, model: str) -> _StreamState:
        return _StreamState(model=model, provider=self.name)

    def _request(
        self,
        messages: Sequence[Message],
        model: str,
        tools: Sequence[Tool],
        temperature: float | None,
        max_tokens: int | None,
        options: Mapping[str, Any],
    ) -> dict[str, Any]:
        create = self._client.messages.create
        kwargs, extra_body = split_options(create, options)
        system, converted = to_anthropic_messages(messages)
        request: dict[str, Any] = {
            "model": model,
            "max_tokens": max_tokens if max_tokens is not None else self.default_max_tokens,
            "messages": converted,
        }
        if system:
            request["system"] = system
        if tools:
            request["tools"] = [to_anthropic_tool(tool) for tool in tools]
        if temperature is not None:
            # Recent SDKs dropped the typed parameter; the API still takes it in the body.
            if sdk_accepts(create, "temperature"):
                request["temperature"] = temperature
            else:
                extra_body.setdefault("temperature", temperature)
        request.update(kwargs)
        if extra_body:
            request["extra_body"] = extra_body
        return request


# -- conversion: Victor -> Anthropic ------------------------------------------------------


def to_anthropic_messages(messages: Sequence[Message]) -> tuple[str, list[dict[str, Any]]]:
    """Victor messages as ``(system, messages)`` for the Messages API.

    System messages are joined into the ``system`` parameter, wherever they stood. Tool
    results become ``tool_result`` blocks of a user turn; consecutive turns of one role
    are merged into one, since the API expects the roles to alternate, with the tool
    results first in a user turn as the API requires. Empty turns are dropped: the API
    rejects empty content.
    """
    system: list[str] = []
    out: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if out and out[-1]["role"] == role:
            merged = out[-1]["content"] + blocks
            if role == "user":
                merged.sort(key=lambda block: block["type"] != "tool_result")  # stable
            out[-1]["content"] = merged
        else:
            out.append({"role": role, "content": blocks})

    for message in messages:
        if message.role == "system":
            if message.content:
                system.append(message.content)
        elif message.role == "user":
            if message.content:
                add("user", [{"type": "text", "text": message.content}])
        elif message.role == "tool":
            block: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id or "",
            }
            if message.content:
                block["content"] = message.content
            if message.is_error:
                block["is_error"] = True
            add("user", [block])
        else:
            blocks: list[dict[str, Any]] = []
            if message.content:
                blocks.append({"type": "text", "text": message.content})
            blocks.extend(
                # Unparseable arguments were stored as {}; the API wants an object here.
                {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
                for call in message.tool_calls
            )
            add("assistant", blocks)
    return "\n\n".join(system), out


def to_anthropic_tool(tool: Tool) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": tool.name, "input_schema": tool.parameters}
    if tool.description:
        spec["description"] = tool.description
    return spec


# -- conversion: Anthropic -> Victor ------------------------------------------------------


def _finish_reason(stop_reason: str | None) -> str | None:
    return _FINISH_REASONS.get(stop_reason, stop_reason) if stop_reason else None


def _tool_call_from_input(call_id: str, name: str, value: Any) -> ToolCall:
    if isinstance(value, dict):
        return ToolCall(id=call_id, name=name, arguments=value)
    raw = value if isinstance(value, str) else json.dumps(value)
    return ToolCall(id=call_id, name=name, arguments={}, raw_arguments=raw)


@dataclass
class _Tokens:
    """Token counts as Anthropic reports them, cached input apart."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0

    def update(self, usage: Any) -> None:
        """Take the counts present in ``usage``; stream deltas carry running totals."""
        if usage is None:
            return
        for attr, name in (
            ("input", "input_tokens"),
            ("output", "output_tokens"),
            ("cache_read", "cache_read_input_tokens"),
            ("cache_write", "cache_creation_input_tokens"),
        ):
            value = getattr(usage, name, None)
            if value is not None:
                setattr(self, attr, int(value))

    def to_usage(self) -> Usage:
        return Usage(
            input_tokens=self.input + self.cache_read + self.cache_write,
            output_tokens=self.output,
            cached_input_tokens=self.cache_read,
            requests=1,
        )


def _parse_message(message: Any, model: str) -> ChatResponse:
    """A ``Message`` as a :class:`ChatResponse` (shape errors are the caller's to map)."""
    text: list[str] = []
    calls: list[ToolCall] = []
    for block in message.content:
        kind = getattr(block, "type", None)
        if kind == "text":
            text.append(block.text)
        elif kind == "tool_use":
            calls.append(_tool_call_from_input(block.id, block.name, block.input))
    tokens = _Tokens()
    tokens.update(message.usage)
    return ChatResponse(
        content="".join(text),
        tool_calls=calls,
        usage=tokens.to_usage(),
        model=message.model or model,
        finish_reason=_finish_reason(message.stop_reason),
        raw=message,
    )


@dataclass
class _ToolBlock:
    id: str
    name: str
    initial: Any = None
    parts: list[str] = field(default_factory=list)


@dataclass
class _StreamState:
    """Assembles a streamed answer from the raw server-sent events."""

    model: str
    provider: str
    text: list[str] = field(default_factory=list)
    blocks: dict[int, _ToolBlock] = field(default_factory=dict)
    calls: list[ToolCall] = field(default_factory=list)
    tokens: _Tokens = field(default_factory=_Tokens)
    stop_reason: str | None = None
    started: bool = False
    stopped: bool = False

    def feed(self, event: Any) -> list[StreamChunk]:
        kind = getattr(event, "type", None)
        if kind == "message_start":
            self.started = True
            self.model = event.message.model or self.model
            self.tokens.update(event.message.usage)
        elif kind == "content_block_start":
            block = event.content_block
            if block.type == "text" and block.text:
                self.text.append(block.text)
                return [StreamChunk(type="text", text=block.text)]
            if block.type == "tool_use":
                self.blocks[event.index] = _ToolBlock(block.id, block.name, block.input)
        elif kind == "content_block_delta":
            delta = event.delta
            if delta.type == "text_delta" and delta.text:
                self.text.append(delta.text)
                return [StreamChunk(type="text", text=delta.text)]
            if delta.type == "input_json_delta" and event.index in self.blocks:
                self.blocks[event.index].parts.append(delta.partial_json or "")
        elif kind == "content_block_stop":
            if event.index in self.blocks:
                return [self._close(self.blocks.pop(event.index))]
        elif kind == "message_delta":
            self.stop_reason = event.delta.stop_reason or self.stop_reason
            self.tokens.update(event.usage)
        elif kind == "message_stop":
            self.stopped = True
        return []

    def _close(self, block: _ToolBlock) -> StreamChunk:
        if block.parts:
            parsed, raw = parse_tool_arguments("".join(block.parts))
            call = ToolCall(id=block.id, name=block.name, arguments=parsed, raw_arguments=raw)
        else:
            # No input deltas: the block's own input is the whole input ({} for no args).
            call = _tool_call_from_input(block.id, block.name, block.initial or {})
        self.calls.append(call)
        return StreamChunk(type="tool_call", tool_call=call)

    def finish(self) -> list[StreamChunk]:
        if not self.started:
            raise ProviderResponseError(
                f"{self.provider}: the stream ended without a message_start event",
                provider=self.provider,
            )
        if not self.stopped:
            # A stream cut short but closed cleanly (a proxy gave up) would otherwise pass
            # for a whole answer; like a dropped connection, it may work if tried again.
            raise ProviderConnectionError(
                f"{self.provider}: the stream ended before the model finished "
                "(no message_stop event)",
                provider=self.provider,
            )
        out = [self._close(self.blocks.pop(index)) for index in sorted(self.blocks)]
        usage = self.tokens.to_usage()
        response = ChatResponse(
            content="".join(self.text),
            tool_calls=list(self.calls),
            usage=usage,
            model=self.model,
            finish_reason=_finish_reason(self.stop_reason),
        )
        out.append(StreamChunk(type="usage", usage=usage))
        out.append(StreamChunk(type="done", response=response))
        return out
