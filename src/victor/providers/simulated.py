"""A seeded stand-in for a real model: latency, token counts, errors and tool use drawn
from distributions, so demos and load tests behave like production traffic offline."""

from __future__ import annotations

import asyncio
import math
import random
import re
from collections.abc import Sequence
from typing import Any

from victor.errors import ProviderRateLimitError, ProviderServerError
from victor.protocols import ChatResponse, IProvider, Message, Tool, ToolCall, Usage
from victor.protocols.tokens import estimate_message_tokens, estimate_tool_call_tokens

_WORD = re.compile(r"[a-z0-9]+")

DEFAULT_ANSWERS = (
    "Here is what I found: {result}",
    "Done. {result}",
    "Based on the tool output, {result}",
    "I can help with that. {result}",
)


_STOPWORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "at",
        "be",
        "by",
        "can",
        "do",
        "for",
        "from",
        "how",
        "i",
        "in",
        "is",
        "it",
        "me",
        "my",
        "of",
        "on",
        "or",
        "please",
        "the",
        "this",
        "to",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "with",
        "you",
        "your",
    }
)


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower().replace("_", " "))) - _STOPWORDS


def _example_value(schema: dict[str, Any], rng: random.Random) -> Any:
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "integer":
        return rng.randint(1, 10)
    if kind == "number":
        return round(rng.uniform(1, 100), 2)
    if kind == "boolean":
        return True
    if kind == "array":
        return [_example_value(schema.get("items") or {"type": "string"}, rng)]
    if kind == "object":
        return {}
    return "example"


class SimulatedClock:
    """Virtual time for a simulation: calling it reads the time in seconds, and
    :meth:`sleep` moves it on at once instead of waiting. Given to a
    :class:`SimulatedProvider` and to ``AgentOrchestrator(clock=...)``, the latencies
    measured are the simulated ones, the same on every run with the same seed."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)  # still a point where other tasks run


class SimulatedProvider(IProvider):
    """Plays a model with seeded randomness.

    - ``latency_ms``: median latency; the spread is log-normal with ``latency_sigma``
      (0 gives a fixed latency, 0 ms gives none).
    - ``output_tokens``: mean answer length in tokens.
    - ``error_rate``: share of calls failing with a retryable server error (a fifth of
      them as rate limits).
    - ``tool_call_rate``: the chance that, offered tools after a user message, it calls
      the tool whose name and description best match the message.
    - ``model_quality``: per-model chance (0-1) to give a "good" answer; the answer's
      ``metadata`` carries it so A/B demos have an outcome to measure.
    - ``model_latency_ms``: per-model median latency, over ``latency_ms``.
    - ``clock``: a :class:`SimulatedClock` that the latency advances instead of a real
      wait.
    """

    name = "simulated"
    default_model = "simulated-model"

    def __init__(
        self,
        *,
        seed: int | None = 0,
        latency_ms: float = 0.0,
        latency_sigma: float = 0.35,
        output_tokens: int = 60,
        error_rate: float = 0.0,
        tool_call_rate: float = 0.6,
        answers: Sequence[str] = DEFAULT_ANSWERS,
        model_quality: dict[str, float] | None = None,
        model_latency_ms: dict[str, float] | None = None,
        clock: SimulatedClock | None = None,
    ) -> None:
        if not 0.0 <= error_rate <= 1.0 or not 0.0 <= tool_call_rate <= 1.0:
            raise ValueError("error_rate and tool_call_rate are probabilities (0 to 1)")
        self.rng = random.Random(seed)
        self.latency_ms = latency_ms
        self.latency_sigma = latency_sigma
        self.output_tokens = output_tokens
        self.error_rate = error_rate
        self.tool_call_rate = tool_call_rate
        self.answers = list(answers) or list(DEFAULT_ANSWERS)
        self.model_quality = dict(model_quality or {})
        self.model_latency_ms = dict(model_latency_ms or {})
        self.calls = 0
        self.sleep = clock.sleep if clock is not None else asyncio.sleep

    def _latency(self, model: str) -> float:
        median = self.model_latency_ms.get(model, self.latency_ms)
        if median <= 0:
            return 0.0
        if self.latency_sigma <= 0:
            return median / 1000
        return median * math.exp(self.rng.gauss(0, self.latency_sigma)) / 1000

    def _pick_tool(self, query: str, tools: Sequence[Tool]) -> Tool:
        words = _words(query)
        return max(
            tools, key=lambda t: (len(words & _words(f"{t.name} {t.description}")), -tools.index(t))
        )

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
        self.calls += 1
        delay = self._latency(model)
        if delay:
            await self.sleep(delay)
        roll = self.rng.random()
        if roll < self.error_rate:
            if roll < self.error_rate / 5:
                raise ProviderRateLimitError(
                    "simulated rate limit", provider=self.name, status_code=429, retry_after=0.0
                )
            raise ProviderServerError("simulated server error", provider=self.name, status_code=500)
        last = messages[-1] if messages else Message(role="user", content="")
        input_tokens = estimate_message_tokens(messages)
        if tools and last.role == "user" and self.rng.random() < self.tool_call_rate:
            chosen = self._pick_tool(last.content, list(tools))
            props = chosen.parameters.get("properties") or {}
            required = chosen.parameters.get("required") or list(props)
            args = {k: _example_value(props.get(k) or {}, self.rng) for k in required}
            call = ToolCall(id=f"sim_{self.calls}", name=chosen.name, arguments=args)
            return ChatResponse(
                tool_calls=[call],
                model=model,
                finish_reason="tool_calls",
                usage=Usage(
                    input_tokens=input_tokens,
                    output_tokens=estimate_tool_call_tokens(call),
                    requests=1,
                ),
            )
        result = last.content[:120] if last.role == "tool" else "all set."
        text = self.rng.choice(self.answers).format(result=result)
        n_out = max(1, int(self.rng.expovariate(1 / max(self.output_tokens, 1))))
        if max_tokens:
            n_out = min(n_out, max_tokens)
        quality = self.model_quality.get(model, 0.7)
        return ChatResponse(
            content=text,
            model=model,
            finish_reason="stop",
            usage=Usage(input_tokens=input_tokens, output_tokens=n_out, requests=1),
            raw={"good": self.rng.random() < quality},
        )
