"""A provider whose answers come from a Python function: for tests and prototypes."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from victor.protocols import ChatResponse, IProvider, Message, Tool
from victor.providers._responses import ResponseSpec, response_from_spec

ResponseFunction = Callable[[list[Message], list[Tool]], ResponseSpec | Awaitable[ResponseSpec]]


class FunctionProvider(IProvider):
    """Calls ``fn(messages, tools)`` (sync or async) for each model call.

    ``fn`` returns what a :class:`ScriptedProvider` script item may be: a string, a dict
    with ``tool_calls``, or a ``ChatResponse``.
    """

    name = "function"
    default_model = "function-model"

    def __init__(self, fn: ResponseFunction) -> None:
        self.fn = fn

    async def chat(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        tools: Sequence[Tool] = (),
        temperature: float | None = None,
        max_tokens: int | None = None,
        **options: Any,
    ) -> ChatResponse:
        spec = self.fn(list(messages), list(tools))
        if inspect.isawaitable(spec):
            spec = await spec
        return response_from_spec(spec, messages, model)
