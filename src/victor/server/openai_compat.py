"""OpenAI's chat completions wire format, in and out of a turn of the orchestrator.

The orchestrator keeps each session's history, so a request names its session (``user``
or the ``X-Session-Id`` header) and its last message, a user's, is the turn. Without a
session, the request's earlier user and assistant messages start a new session. System
(or developer) messages become the turn's system prompt. Tools are the server's: the
orchestrator runs them and the client gets the answer.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from victor.protocols import ChatResponse, Message, Usage
from victor.server.errors import APIError
from victor.server.schemas import ChatCompletionRequest, CompletionMessage

__all__ = ["CompletionTurn", "chunk", "completion", "turn_of", "usage_body"]


class CompletionTurn:
    """What a chat completions request asks of the orchestrator."""

    __slots__ = ("earlier", "max_tokens", "message", "system_prompt")

    def __init__(
        self,
        message: str,
        system_prompt: str | None,
        earlier: list[Message],
        max_tokens: int | None,
    ) -> None:
        self.message = message
        self.system_prompt = system_prompt
        self.earlier = earlier
        self.max_tokens = max_tokens


def _text(message: CompletionMessage, index: int) -> str:
    if message.content is None:
        return ""
    if isinstance(message.content, str):
        return message.content
    pieces = []
    for part in message.content:
        if part.type != "text" or part.text is None:
            raise APIError(
                400,
                f"messages[{index}]: content parts of type {part.type!r} are not supported "
                "(text only)",
                param=f"messages[{index}].content",
            )
        pieces.append(part.text)
    return "".join(pieces)


def turn_of(request: ChatCompletionRequest) -> CompletionTurn:
    if request.tools:
        raise APIError(
            400,
            "tools are the server's: the orchestrator offers and runs its own, so a request "
            "may not bring tools",
            param="tools",
        )
    last = request.messages[-1]
    index = len(request.messages) - 1
    if last.role != "user":
        raise APIError(
            400,
            f"the last message must be the user's (it is {last.role!r}): the orchestrator "
            "runs tools itself and keeps the history",
            param=f"messages[{index}].role",
        )
    message = _text(last, index)
    if not message.strip():
        raise APIError(400, "the last user message is empty", param=f"messages[{index}].content")
    system: list[str] = []
    earlier: list[Message] = []
    for i, item in enumerate(request.messages[:-1]):
        text = _text(item, i)
        if item.role in ("system", "developer"):
            if text:
                system.append(text)
        elif item.role in ("user", "assistant") and text and not item.tool_calls:
            earlier.append(Message(role=item.role, content=text))
    return CompletionTurn(
        message,
        "\n\n".join(system) or None,
        earlier,
        request.max_completion_tokens or request.max_tokens,
    )


def usage_body(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
    }


def _finish_reason(response: ChatResponse) -> str:
    reason = response.finish_reason
    if reason in ("length", "max_tokens"):
        return "length"
    if reason == "content_filter":
        return "content_filter"
    return "stop"


def victor_fields(response: ChatResponse) -> dict[str, Any]:
    """What the orchestrator adds: the session, the A/B variant, the tools run, the cost."""
    return {
        "session_id": response.session_id,
        "experiment": response.experiment,
        "variant": response.variant,
        "cost_usd": response.cost,
        "tools_run": [
            {"name": r.call.name, "arguments": r.call.arguments, "is_error": r.is_error}
            for r in response.tool_results
        ],
    }


def new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def completion(response: ChatResponse, model: str) -> dict[str, Any]:
    return {
        "id": new_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": response.model or model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": response.content, "refusal": None},
                "logprobs": None,
                "finish_reason": _finish_reason(response),
            }
        ],
        "usage": usage_body(response.usage),
        "system_fingerprint": None,
        "victor": victor_fields(response),
    }


def chunk(
    completion_id: str,
    created: int,
    model: str,
    delta: dict[str, Any] | None,
    finish_reason: str | None = None,
    usage: Usage | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": []
        if delta is None
        else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }
    if usage is not None:
        body["usage"] = usage_body(usage)
    if extra is not None:
        body["victor"] = extra
    return body


def finish_reason_of(response: ChatResponse) -> str:
    return _finish_reason(response)
