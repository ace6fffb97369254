"""OpenAI, and every OpenAI-compatible server, through the official ``openai`` SDK.

Chat Completions is the one protocol that OpenAI, Ollama, vLLM, LM Studio and the
llama.cpp server all speak, so this provider targets it: point ``base_url`` at a local
server and the same code runs offline.

The SDK is imported when a provider is constructed, not when this module is imported,
so ``import victor`` stays fast for users who never touch OpenAI.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from victor.errors import ProviderAuthError, ProviderResponseError
from victor.protocols.messages import ChatResponse, Message, StreamChunk, ToolCall, Usage
from victor.protocols.tools import Tool
from victor.providers._retry import RetryPolicy
from victor.providers._sdk import (
    SDKProvider,
    parse_tool_arguments,
    sdk_accepts,
    split_options,
)

if TYPE_CHECKING:
    from openai import AsyncOpenAI

__all__ = ["OpenAIProvider"]

# Local servers do not check the key, but the SDK refuses to start without one.
_PLACEHOLDER_KEY = "not-needed"
_AUTH_HINT = " (check the api_key argument or the OPENAI_API_KEY environment variable)"
MaxTokensField = Literal["max_tokens", "max_completion_tokens"]


class OpenAIProvider(SDKProvider):
    """A model served over the OpenAI Chat Completions API.

    ``api_key`` defaults to ``OPENAI_API_KEY`` and ``base_url`` to ``OPENAI_BASE_URL``.
    With a ``base_url`` and no key, a placeholder key is sent, as local servers (Ollama,
    vLLM, LM Studio, llama.cpp) ignore it. ``client`` takes a ready ``AsyncOpenAI`` (or
    ``AsyncAzureOpenAI``) instead; it is used through a copy with SDK retries off and is
    left open by :meth:`aclose`, since its owner may share it.

    Failed calls are retried by ``retry_policy`` (default: ``RetryPolicy(max_retries=
    max_retries)``), never by the SDK. ``max_tokens_field`` names the request field that
    carries ``max_tokens``: OpenAI itself wants ``max_completion_tokens`` (its reasoning
    models reject ``max_tokens``), while many compatible servers only know ``max_tokens``;
    the default picks by host.
    """

    default_model = "gpt-4o-mini"

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        organization: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 3,
        default_headers: Mapping[str, str] | None = None,
        client: AsyncOpenAI | None = None,
        name: str = "openai",
        retry_policy: RetryPolicy | None = None,
        max_tokens_field: MaxTokensField | None = None,
    ) -> None:
        self.name = name
        self._auth_hint = _AUTH_HINT
        self._retry = retry_policy or RetryPolicy(max_retries=max_retries)
        key = api_key or os.environ.get("OPENAI_API_KEY")
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        if client is None and not key:
            if base_url is None:
                raise ProviderAuthError(
                    "no OpenAI API key: pass api_key=... or set the OPENAI_API_KEY "
                    "environment variable (for a local OpenAI-compatible server such as "
                    "Ollama or vLLM, pass base_url=... and no key is needed)",
                    provider=name,
                )
            key = _PLACEHOLDER_KEY

        import openai  # here, not at module level: it takes most of a second to import

        self._sdk = openai
        if client is not None:
            self._client = self._without_sdk_retries(client)
            self._owns_client = False
        else:
            self._client = openai.AsyncOpenAI(
                api_key=key,
                base_url=base_url,
                organization=organization,
                timeout=timeout,
                max_retries=0,
                default_headers=default_headers,
            )
            self._owns_client = True
        self._max_tokens_field: MaxTokensField = max_tokens_field or _default_max_tokens_field(
            str(self._client.base_url)
        )

    def _for_streaming(self, request: dict[str, Any]) -> dict[str, Any]:
        # Without include_usage, a streamed call reports no token counts at all.
        options = {**request.get("stream_options", {}), "include_usage": True}
        return {**request, "stream": True, "stream_options": options}

    def _create(self) -> Callable[..., Any]:
        return self._client.chat.completions.create

    def _parse(self, result: Any, model: str) -> ChatResponse:
        return _parse_completion(result, model)

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
        create = self._client.chat.completions.create
        kwargs, extra_body = split_options(create, options)
        request: dict[str, Any] = {"model": model, "messages": to_openai_messages(messages)}
        if tools:
            request["tools"] = [to_openai_tool(tool) for tool in tools]
        if temperature is not None:
            request["temperature"] = temperature
        if max_tokens is not None:
            # Older SDKs lack max_completion_tokens as a parameter; the body takes it anyway.
            if sdk_accepts(create, self._max_tokens_field):
                request[self._max_tokens_field] = max_tokens
            else:
                extra_body[self._max_tokens_field] = max_tokens
        request.update(kwargs)
        if extra_body:
            request["extra_body"] = extra_body
        return request


def _default_max_tokens_field(base_url: str) -> MaxTokensField:
    host = urlsplit(base_url).hostname or ""
    return "max_completion_tokens" if host.endswith("api.openai.com") else "max_tokens"


# -- conversion: Victor -> OpenAI ---------------------------------------------------------


def to_openai_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Victor messages as Chat Completions messages."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "assistant":
            entry: dict[str, Any] = {"role": "assistant", "content": message.content}
            if message.tool_calls:
                entry["content"] = message.content or None
                entry["tool_calls"] = [
                    {
                        "id": call.id,
                        "type": "function",
                        # Unparseable arguments go back as {} rather than the raw text: some
                        # compatible servers re-parse arguments to render their chat template
                        # and would reject the whole request. The tool result explains.
                        "function": {
                            "name": call.name,
                            "arguments": json.dumps(call.arguments, ensure_ascii=False),
                        },
                    }
                    for call in message.tool_calls
                ]
            out.append(entry)
        elif message.role == "tool":
            # Chat Completions has no error flag on tool results; the content says it.
            out.append(
                {
                    "role": "tool",
                    "tool_call_id": message.tool_call_id or "",
                    "content": message.content,
                }
            )
        else:
            out.append({"role": message.role, "content": message.content})
    return out


def to_openai_tool(tool: Tool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name, "parameters": tool.parameters}
    if tool.description:
        function["description"] = tool.description
    return {"type": "function", "function": function}


# -- conversion: OpenAI -> Victor ---------------------------------------------------------


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage(requests=1)
    details = getattr(usage, "prompt_tokens_details", None)
    return Usage(
        input_tokens=getattr(usage, "prompt_tokens", None) or 0,
        output_tokens=getattr(usage, "completion_tokens", None) or 0,
        cached_input_tokens=getattr(details, "cached_tokens", None) or 0,
        requests=1,
    )


def _tool_call(call_id: str | None, name: str | None, arguments: str | None) -> ToolCall:
    parsed, raw = parse_tool_arguments(arguments)
    return ToolCall(
        # Some local servers omit the id; the orchestrator needs one to pair the result.
        id=call_id or f"call_{uuid.uuid4().hex[:24]}",
        name=name or "",
        arguments=parsed,
        raw_arguments=raw,
    )


def _parse_completion(completion: Any, model: str) -> ChatResponse:
    """A ``ChatCompletion`` as a :class:`ChatResponse` (shape errors are the caller's to map)."""
    if not completion.choices:
        raise ValueError("the completion has no choices")
    choice = completion.choices[0]
    message = choice.message
    calls = [
        _tool_call(call.id, call.function.name, call.function.arguments)
        for call in message.tool_calls or []
        if getattr(call, "function", None) is not None
    ]
    return ChatResponse(
        content=message.content or getattr(message, "refusal", None) or "",
        tool_calls=calls,
        usage=_usage(completion.usage),
        model=completion.model or model,
        finish_reason=choice.finish_reason,
        raw=completion,
    )


@dataclass
class _PartialCall:
    id: str | None = None
    name: str | None = None
    arguments: list[str] = field(default_factory=list)


@dataclass
class _StreamState:
    """Assembles a streamed answer: text deltas, tool calls split by index, usage."""

    model: str
    provider: str
    text: list[str] = field(default_factory=list)
    pending: dict[int, _PartialCall] = field(default_factory=dict)
    calls: list[ToolCall] = field(default_factory=list)
    usage: Usage | None = None
    finish_reason: str | None = None
    seen_any: bool = False

    def feed(self, chunk: Any) -> list[StreamChunk]:
        self.seen_any = True
        out: list[StreamChunk] = []
        if getattr(chunk, "model", None):
            self.model = chunk.model
        if getattr(chunk, "usage", None) is not None:
            self.usage = _usage(chunk.usage)
        for choice in chunk.choices or []:
            if getattr(choice, "index", 0) not in (0, None):
                continue  # we ask for one choice; ignore any others
            delta = choice.delta
            piece = (delta.content or getattr(delta, "refusal", None) or "") if delta else ""
            if piece:
                self.text.append(piece)
                out.append(StreamChunk(type="text", text=piece))
            for part in (delta.tool_calls if delta else None) or []:
                partial = self.pending.setdefault(
                    part.index if part.index is not None else 0, _PartialCall()
                )
                partial.id = partial.id or part.id
                function = part.function
                if function is not None:
                    # The name comes whole in the first delta; some servers repeat it.
                    partial.name = partial.name or function.name
                    if function.arguments:
                        partial.arguments.append(function.arguments)
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
                out.extend(self._flush())
        return out

    def _flush(self) -> list[StreamChunk]:
        out = []
        for index in sorted(self.pending):
            partial = self.pending.pop(index)
            call = _tool_call(partial.id, partial.name, "".join(partial.arguments))
            self.calls.append(call)
            out.append(StreamChunk(type="tool_call", tool_call=call))
        return out

    def finish(self) -> list[StreamChunk]:
        if not self.seen_any:
            raise ProviderResponseError(
                f"{self.provider}: the stream ended without any data", provider=self.provider
            )
        out = self._flush()
        usage = self.usage or Usage(requests=1)
        response = ChatResponse(
            content="".join(self.text),
            tool_calls=list(self.calls),
            usage=usage,
            model=self.model,
            finish_reason=self.finish_reason,
        )
        out.append(StreamChunk(type="usage", usage=usage))
        out.append(StreamChunk(type="done", response=response))
        return out
