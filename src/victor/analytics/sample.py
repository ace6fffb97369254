"""Synthetic event traffic shaped like the orchestrator's: for benchmarks, tests and demos.

Each turn emits what ``AgentOrchestrator.chat`` emits (``llm_request``, ``token_usage``,
``tool_call``, ``chat_complete``...) with the same data keys, built the same fast way
(``model_construct``).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from victor.analytics.events import (
    CACHED_INPUT_TOKENS,
    FINISH_REASONS,
    INPUT_TOKENS,
    MODEL,
    OUTPUT_TOKENS,
    PROVIDER,
    TOOL_CALL_ID,
    TOOL_NAME,
)
from victor.analytics.pricing import default_price_table
from victor.protocols.analytics import AnalyticsEvent, new_event_id
from victor.protocols.messages import Usage

MODELS = (("claude-sonnet-4-5", "anthropic"), ("gpt-4o-mini", "openai"), ("local-llama", "ollama"))
TOOLS = ("search", "read_file", "calculator", "web_fetch")
TENANTS = ("acme", "globex", "initech")


def _event(
    kind: str, session: str, ts: datetime, data: dict[str, Any], **extra: str | None
) -> AnalyticsEvent:
    return AnalyticsEvent.model_construct(
        event_id=new_event_id(),
        type=kind,
        session_id=session,
        data=data,
        timestamp=ts,
        tenant_id=session.split(":", 1)[0],
        experiment=extra.get("experiment"),
        variant=extra.get("variant"),
    )


def turn_events(
    rng: random.Random, session: str, ts: datetime, variant: str | None = None
) -> list[AnalyticsEvent]:
    """The events of one chat turn ending at ``ts``."""
    model, provider = rng.choice(MODELS)
    exp = {"experiment": "prompt-test" if variant else None, "variant": variant}
    events: list[AnalyticsEvent] = []
    total_latency = 0.0
    total_tokens = 0
    cost: float | None = 0.0
    iterations = rng.choice((1, 1, 2, 3))
    for iteration in range(iterations):
        latency = rng.lognormvariate(6.5, 0.5)
        total_latency += latency
        inp, out = rng.randint(200, 4000), rng.randint(20, 800)
        usage = Usage(input_tokens=inp, output_tokens=out)
        call_cost = default_price_table().cost(model, usage, ts)
        cost = None if call_cost is None or cost is None else cost + call_cost
        total_tokens += inp + out
        last = iteration > 0 and rng.random() < 0.5
        events.append(
            _event(
                "llm_request",
                session,
                ts,
                {
                    MODEL: model,
                    PROVIDER: provider,
                    "latency_ms": latency,
                    INPUT_TOKENS: inp,
                    OUTPUT_TOKENS: out,
                    FINISH_REASONS: ["stop" if last else "tool_calls"],
                },
                **exp,
            )
        )
        events.append(
            _event(
                "token_usage",
                session,
                ts,
                {
                    MODEL: model,
                    INPUT_TOKENS: inp,
                    OUTPUT_TOKENS: out,
                    CACHED_INPUT_TOKENS: 0,
                    "total_tokens": inp + out,
                    "cost_usd": call_cost,
                    "unpriced": call_cost is None,
                },
                **exp,
            )
        )
        if not last:
            tool = rng.choice(TOOLS)
            failed = rng.random() < 0.05
            events.append(
                _event(
                    "tool_call",
                    session,
                    ts,
                    {
                        "tool": tool,
                        TOOL_NAME: tool,
                        TOOL_CALL_ID: f"call_{rng.getrandbits(40):x}",
                        "duration_ms": rng.lognormvariate(3.5, 1.0),
                        "is_error": failed,
                    },
                    **exp,
                )
            )
    if rng.random() < 0.02:
        events.append(
            _event(
                "error",
                session,
                ts,
                {"error_type": "RateLimitError", "message": "429", "stage": "llm"},
                **exp,
            )
        )
    events.append(
        _event(
            "chat_complete",
            session,
            ts,
            {
                MODEL: model,
                "latency_ms": total_latency,
                "iterations": iterations,
                "total_tokens": total_tokens,
                "cost_usd": cost,
            },
            **exp,
        )
    )
    return events


def sample_events(
    n: int, *, seed: int = 0, start: datetime | None = None, span: timedelta = timedelta(hours=1)
) -> Iterator[AnalyticsEvent]:
    """About ``n`` events of whole turns, spread over ``span`` from ``start``."""
    rng = random.Random(seed)
    start = start or datetime.now(UTC) - span
    produced = 0
    while produced < n:
        tenant = rng.choice(TENANTS)
        session = f"{tenant}:s{rng.getrandbits(32):08x}"
        variant = rng.choice(("control", "treatment", None))
        ts = start + span * rng.random()
        for event in turn_events(rng, session, ts, variant):
            yield event
            produced += 1
            if produced >= n:
                return
