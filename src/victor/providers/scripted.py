"""A provider that plays a fixed list of responses: for tests and examples."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from victor.errors import ProviderError
from victor.protocols import ChatResponse, IProvider, Message, Tool
from victor.providers._responses import ResponseSpec, response_from_spec


class ScriptedProvider(IProvider):
    """Answers each model call with the next response of ``script``.

    Each item is a ``str`` (a text answer), a dict such as
    ``{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}``,
    a ``ChatResponse``, or an exception to raise. With ``cycle=True`` the script starts
    over when it runs out; otherwise running out is an error. ``calls`` records what
    each model call was given.
    """

    name = "scripted"
    default_model = "scripted-model"

    def __init__(self, script: Iterable[ResponseSpec], cycle: bool = False) -> None:
        self.script = list(script)
        if not self.script:
            raise ValueError("a ScriptedProvider needs at least one response")
        self.cycle = cycle
        self.position = 0
        self.calls: list[dict[str, Any]] = []

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
        if self.position >= len(self.script):
            if not self.cycle:
                raise ProviderError(
                    f"the script ran out after {len(self.script)} responses "
                    "(pass cycle=True to repeat it)",
                    provider=self.name,
                )
            self.position = 0
        spec = self.script[self.position]
        self.position += 1
        self.calls.append(
            {
                "messages": list(messages),
                "model": model,
                "tools": [t.name for t in tools],
                "temperature": temperature,
                "max_tokens": max_tokens,
            }
        )
        return response_from_spec(spec, messages, model)
