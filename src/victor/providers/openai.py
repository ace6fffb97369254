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
    from httpx2 import Timeout
    from openai import AsyncOpenAI

__all__ = ["OpenAIProvider"]

# Local servers do not check the key, but the SDK refuses to start without one.
_PLACEHOLDER_KEY = "not-needed"
_AUTH_HINT = " (check the api_key argument or the OPENAI_API_KEY environment variable)"
MaxTokensField = Literal["max_tokens", "max_completion_tokens"]


class OpenAIProvider(SDKProvider):
    """A model served over the OpenAI Chat Completions API.

    ``base_url`` defaults to ``OPENAI_BASE_URL``, then to OpenAI's API. ``api_key``
    defaults to ``OPENAI_API_KEY``, but only for OpenAI's own API or the server named by
    ``OPENAI_BASE_URL``: a ``base_url`` passed in code for another host (Ollama, vLLM, a
    gateway) gets a placeholder key unless ``api_key=`` is given too, so that the user's
    OpenAI key is never sent to a server it was not meant for. ``client`` takes a ready
    ``AsyncOpenAI`` (or ``AsyncAzureOpenAI``) instead; it is used through a copy with SDK
    retries off and is left open by :meth:`aclose`, since its owner may share it.

    ``timeout`` bounds the wait for an answer (600 s; for a stream, between two chunks)
    and ``connect_timeout`` reaching the server (5 s); an ``httpx2.Timeout`` sets every
    phase at once. Failed calls are retried by ``retry_policy`` (default: ``RetryPolicy(
    max_retries=max_retries)``), never by the SDK. ``max_tokens_field`` names the request
    field that carries ``max_tokens``: OpenAI itself wants ``max_completion_tokens`` (its
    reasoning models reject ``max_tokens``), while many compatible servers only know
    ``max_tokens``; the default picks by host.

    Streamed calls ask for token counts (``stream_options={"include_usage": True}``)
    unless ``stream_usage=False``, for servers that reject the field; a ``stream_options``
    passed to :meth:`stream` is sent as given (``None``: not sent).
    """

    default_model = "gpt-4o-mini"

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        organization: str | None = None,
        timeout: float | Timeout | None = DEFAULT_READ_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        max_retries: int = 3,
        default_headers: Mapping[str, str] | None = None,
        client: AsyncOpenAI | None = None,
        name: str = "openai",
        retry_policy: RetryPolicy | None = None,
        max_tokens_field: MaxTokensField | None = None,
        stream_usage: bool = True,
    ) -> None:
        self.name = name
        self._auth_hint = _AUTH_HINT
        self._retry = retry_policy or RetryPolicy(max_retries=max_retries)
        self._stream_usage = stream_usage
        env_base_url = os.environ.get("OPENAI_BASE_URL") or None
        base_url = base_url or env_base_url
        key = api_key
        if not key and _may_use_env_key(base_url, env_base_url):
            key = os.environ.get("OPENAI_API_KEY")
        if client is None and not key:
            if base_url is None or _is_openai_url(base_url):
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
                timeout=sdk_timeout(openai, timeout, connect_timeout),
                max_retries=0,
                default_headers=default_headers,
            )
            self._owns_client = True
        self._max_tokens_field: MaxTokensField = max_tokens_field or _default_max_tokens_field(
            str(self._client.base_url)
        )

    def _for_chat(self, request: dict[str, Any]) -> dict[str, Any]:
        # The API refuses stream_options without stream; a caller may pass the same options
        # to chat and stream.
        if "stream_options" not in request:
            return request
        return {key: value for key, value in request.items() if key != "stream_options"}

    def _for_streaming(self, request: dict[str, Any]) -> dict[str, Any]:
        request = {**request, "stream": True}
        if "stream_options" in request:
            if request["stream_options"] is None:
                del request["stream_options"]  # the caller asked for none
        elif "stream_options" in (request.get("extra_body") or {}):
            pass  # the caller's, sent as given
        elif self._stream_usage:
            # Without include_usage, a streamed call reports no token counts at all.
            request["stream_options"] = {"include_usage": True}
        return request

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


def _is_openai_url(url: str) -> bool:
    """Whether ``url`` is OpenAI's own API (``api.openai.com`` or a regional variant)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return parts.scheme == "https" and (host == "api.openai.com" or host.endswith(".openai.com"))


def _may_use_env_key(base_url: str | None, env_base_url: str | None) -> bool:
    """Whether ``OPENAI_API_KEY`` may be sent to ``base_url``.

    Yes for OpenAI's API, and for the server ``OPENAI_BASE_URL`` names (the two variables
    are set together). Not for a URL given in code: the key in the environment is most
    likely the user's OpenAI key, and a local server or third-party gateway must not get
    it by accident.
    """
    if base_url is None or _is_openai_url(base_url):
        return True
    return env_base_url is not None and base_url.rstrip("/") == env_base_url.rstrip("/")


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
    index: int | None = None
    id: str | None = None
    name: str | None = None
    arguments: list[str] = field(default_factory=list)

    def starts_anew(self, call_id: str | None, name: str | None) -> bool:
        """Whether a piece bringing ``call_id`` and ``name`` belongs to another call.

        Pieces are grouped by ``index``, but Ollama numbers every parallel call 0 and
        some gateways send no index at all; a different id, or a different name (for
        servers without ids), is then what shows a new call began. A repeated name or id
        is a continuation: some servers repeat them in every piece.
        """
        if call_id and self.id:
            return call_id != self.id
        return bool(name and self.name and name != self.name)


@dataclass
class _StreamState:
    """Assembles a streamed answer: text deltas, tool calls pieced together, usage."""

    model: str
    provider: str
    text: list[str] = field(default_factory=list)
    pending: list[_PartialCall] = field(default_factory=list)
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
                self._add_piece(part)
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
                out.extend(self._flush())
        return out

    def _add_piece(self, part: Any) -> None:
        """File one tool-call piece under its call, opening a new call when it starts one."""
        index = getattr(part, "index", None)
        function = getattr(part, "function", None)
        call_id = getattr(part, "id", None) or None
        name = getattr(function, "name", None) or None
        if index is None:
            # No index: the piece continues the call streamed last, unless it starts one.
            partial = self.pending[-1] if self.pending else None
        else:
            partial = next((p for p in reversed(self.pending) if p.index == index), None)
        if partial is None or partial.starts_anew(call_id, name):
            partial = _PartialCall(index=index)
            self.pending.append(partial)
        partial.id = partial.id or call_id
        # The name comes whole in the first piece; some servers repeat it.
        partial.name = partial.name or name
        arguments = getattr(function, "arguments", None)
        if arguments:
            partial.arguments.append(arguments)

    def _flush(self) -> list[StreamChunk]:
        out = []
        for partial in self.pending:
            call = _tool_call(partial.id, partial.name, "".join(partial.arguments))
            self.calls.append(call)
            out.append(StreamChunk(type="tool_call", tool_call=call))
        self.pending.clear()
        return out

    def finish(self) -> list[StreamChunk]:
        if not self.seen_any:
            raise ProviderResponseError(
                f"{self.provider}: the stream ended without any data", provider=self.provider
            )
        if self.finish_reason is None:
            # A proxy or load balancer that cuts a stream may close it cleanly: without a
            # finish_reason, the text and tool arguments may be half of the answer.
            raise ProviderConnectionError(
                f"{self.provider}: the stream ended before the model finished",
                provider=self.provider,
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
