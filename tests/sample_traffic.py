"""Synthetic event traffic shaped like the orchestrator's, for tests and benchmarks.

Each turn emits what ``AgentOrchestrator.chat`` emits, built by the same builders
(:mod:`victor.analytics.events`), with timestamps spread over a window.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from victor.analytics import events as ev
from victor.pricing import default_price_table
from victor.protocols.messages import Usage

MODELS = (("claude-sonnet-4-5", "anthropic"), ("gpt-4o-mini", "openai"), ("local-llama", "ollama"))
TOOLS = ("search", "read_file", "calculator", "web_fetch")
TENANTS = ("acme", "globex", "initech")


class RateLimitError(Exception):
    pass


def turn_events(
    rng: random.Random, session: str, ts: datetime, variant: str | None = None
) -> list[ev.Event]:
    """The events of one chat turn ending at ``ts``."""
    model, provider = rng.choice(MODELS)
    scope = ev.Scope(
        session,
        tenant_id=session.split(":", 1)[0],
        experiment="prompt-test" if variant else None,
        variant=variant,
    )
    events: list[ev.Event] = []
    total_latency, total = 0.0, Usage()
    cost: float | None = 0.0
    iterations = rng.choice((1, 1, 2, 3))
    for iteration in range(iterations):
        latency = rng.lognormvariate(6.5, 0.5)
        total_latency += latency
        usage = Usage(input_tokens=rng.randint(200, 4000), output_tokens=rng.randint(20, 800))
        total += usage
        call_cost = default_price_table().cost(model, usage, ts)
        cost = None if call_cost is None or cost is None else cost + call_cost
        last = iteration > 0 and rng.random() < 0.5
        events.append(
            ev.llm_request(
                scope,
                model=model,
                response_model=model,
                provider=provider,
                latency_ms=latency,
                usage=usage,
                finish_reason="stop" if last else "tool_calls",
            )
        )
        events.append(
            ev.token_usage(scope, model=model, provider=provider, usage=usage, cost_usd=call_cost)
        )
        if not last:
            events.append(
                ev.tool_call(
                    scope,
                    tool=rng.choice(TOOLS),
                    call_id=f"call_{rng.getrandbits(40):x}",
                    duration_ms=rng.lognormvariate(3.5, 1.0),
                    is_error=rng.random() < 0.05,
                )
            )
    if rng.random() < 0.02:
        events.append(ev.error(scope, RateLimitError("429"), "llm"))
    events.append(
        ev.chat_complete(
            scope,
            model=model,
            latency_ms=total_latency,
            iterations=iterations,
            total_tokens=total.total_tokens,
            cost_usd=cost,
        )
    )
    for event in events:
        event.timestamp = ts
    return events


def sample_events(
    n: int, *, seed: int = 0, start: datetime | None = None, span: timedelta = timedelta(hours=1)
) -> Iterator[ev.Event]:
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
