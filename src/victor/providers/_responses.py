"""Turning short response specs (a string, a dict) into ``ChatResponse`` objects."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from victor.protocols import ChatResponse, Message, ToolCall, Usage
from victor.protocols.tokens import (
    estimate_message_tokens,
    estimate_tokens,
    estimate_tool_call_tokens,
)

_ids = itertools.count(1)

ResponseSpec = str | Mapping[str, Any] | ChatResponse | BaseException


def response_from_spec(spec: Any, messages: Sequence[Message], model: str) -> ChatResponse:
    """``"text"`` answers; ``{"tool_calls": [{"name": ..., "arguments": {...}}]}`` calls
    tools (``"content"`` may sit beside it); a ``ChatResponse`` is used as is; an
    exception is raised, to test error paths."""
    if isinstance(spec, BaseException):
        raise spec
    if isinstance(spec, ChatResponse):
        return spec
    if isinstance(spec, str):
        content, calls = spec, []
    elif isinstance(spec, Mapping):
        unknown = set(spec) - {"content", "tool_calls", "usage", "finish_reason"}
        if unknown:
            raise ValueError(f"unknown keys in a scripted response: {sorted(unknown)}")
        content = str(spec.get("content") or "")
        calls = []
        for raw in spec.get("tool_calls") or []:
            if not isinstance(raw, Mapping) or "name" not in raw:
                raise ValueError(f"a scripted tool call needs a 'name': {raw!r}")
            args = raw.get("arguments") or {}
            if isinstance(args, str):  # let tests script malformed JSON from the model
                calls.append(
                    ToolCall(
                        id=raw.get("id") or f"call_{next(_ids)}",
                        name=raw["name"],
                        raw_arguments=args,
                    )
                )
            else:
                calls.append(
                    ToolCall(
                        id=raw.get("id") or f"call_{next(_ids)}",
                        name=raw["name"],
                        arguments=dict(args),
                    )
                )
    else:
        raise TypeError(f"a scripted response is a str, a dict or a ChatResponse, not {spec!r}")
    if isinstance(spec, Mapping) and spec.get("usage") is not None:
        usage = Usage.model_validate(spec["usage"])
    else:
        out = estimate_tokens(content) + sum(estimate_tool_call_tokens(c) for c in calls)
        usage = Usage(input_tokens=estimate_message_tokens(messages), output_tokens=out, requests=1)
    finish = "tool_calls" if calls else "stop"
    if isinstance(spec, Mapping) and spec.get("finish_reason"):
        finish = str(spec["finish_reason"])
    return ChatResponse(
        content=content, tool_calls=calls, usage=usage, model=model, finish_reason=finish
    )
