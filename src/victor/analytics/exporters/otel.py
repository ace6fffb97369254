"""Events as OpenTelemetry spans and metrics, named by the GenAI conventions: ``chat``,
``execute_tool`` and ``invoke_agent`` spans, ``victor.error`` spans, and the
``gen_ai.client.token.usage`` and ``gen_ai.client.operation.duration`` histograms. Spans
are made after the fact, in a worker thread. Needs ``opentelemetry-api`` (the ``otel``
extra); without an SDK the providers are no-ops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from victor.analytics import events as ev
from victor.analytics.encoding import EventEncodeError, event_label
from victor.analytics.exporters.base import BaseAnalyticsExporter, partial_result
from victor.protocols.analytics import AnalyticsEvent, ExportResult

_SCOPE = "victor.analytics"
_OPERATION = "gen_ai.operation.name"
_SCOPE_ATTRIBUTES = (ev.CONVERSATION_ID, "victor.tenant.id", "victor.experiment", "victor.variant")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _strings(pairs: Any) -> dict[str, str]:
    return {key: value for key, value in pairs if isinstance(value, str)}


class OpenTelemetryAnalyticsExporter(BaseAnalyticsExporter):
    """Spans and metrics through the given (or the global) tracer and meter providers."""

    outbox = True  # a collector that is down gets the spans when it is back
    destination = "opentelemetry"
    takes_records = True

    def __init__(
        self,
        *,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        agent_name: str = "victor",
        name: str | None = None,
    ) -> None:
        try:
            from opentelemetry import metrics, trace
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "OpenTelemetryAnalyticsExporter needs opentelemetry-api: "
                "pip install 'victor-orchestrator[otel]'"
            ) from exc
        from opentelemetry.context import Context
        from opentelemetry.trace import SpanKind, Status, StatusCode

        self._kind, self._error = SpanKind, lambda text=None: Status(StatusCode.ERROR, text)
        self._root = Context()  # spans are roots, not children of whatever ran last
        self.agent_name = agent_name
        self.name = name or self.name
        self._tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer(_SCOPE)
        meter = (meter_provider or metrics.get_meter_provider()).get_meter(_SCOPE)
        self._tokens = meter.create_histogram("gen_ai.client.token.usage", unit="{token}")
        self._duration = meter.create_histogram("gen_ai.client.operation.duration", unit="s")
        self._cost = meter.create_counter("victor.gen_ai.cost", unit="USD")
        self._unpriced = meter.create_counter("victor.gen_ai.unpriced_calls", unit="{call}")

    async def export(self, events: Sequence[AnalyticsEvent]) -> ExportResult:
        # Off the loop: the SDK's span processors may export synchronously (a
        # SimpleSpanProcessor to a slow collector), which would stall every chat turn.
        return await asyncio.to_thread(self._export, tuple(events))

    def _export(self, events: Sequence[AnalyticsEvent]) -> ExportResult:
        rejected: list[EventEncodeError] = []
        for event in events:
            try:
                self._one(event)
            except Exception as exc:
                rejected.append(EventEncodeError(event_label(event), f"OpenTelemetry: {exc!r}"))
        return partial_result(len(events) - len(rejected), rejected)

    def _one(self, event: AnalyticsEvent) -> None:
        kind, data, ts = event.type, event.data, event.timestamp
        if not isinstance(kind, str) or not isinstance(data, dict) or not isinstance(ts, datetime):
            raise ValueError("type must be a string, data a dict and timestamp a datetime")
        scope = (event.session_id, event.tenant_id, event.experiment, event.variant)
        attrs: dict[str, Any] = {"victor.event.type": kind}
        attrs |= _strings(zip(_SCOPE_ATTRIBUTES, scope, strict=True))
        model = {_OPERATION: "chat"} | _strings((k, data.get(k)) for k in (ev.MODEL, ev.PROVIDER))
        latency = _number(data.get(ev.LATENCY_MS)) or _number(data.get(ev.DURATION_MS))
        seconds = (latency or 0.0) / 1e3
        end = int(ts.timestamp() * 1e9)
        if kind == ev.LLM_REQUEST:
            for key in (ev.INPUT_TOKENS, ev.OUTPUT_TOKENS, ev.CACHED_INPUT_TOKENS):
                if (value := _number(data.get(key))) is not None:
                    attrs[key] = int(value)
            if isinstance(reasons := data.get(ev.FINISH_REASONS), list | tuple):
                attrs[ev.FINISH_REASONS] = [str(r) for r in reasons]
            self._span(f"chat {data.get(ev.MODEL) or ''}".strip(), attrs | model, seconds, end)
            if latency is not None:
                self._duration.record(seconds, model)
        elif kind == ev.TOKEN_USAGE:
            for key, token_type in ((ev.INPUT_TOKENS, "input"), (ev.OUTPUT_TOKENS, "output")):
                if (value := _number(data.get(key))) is not None:
                    self._tokens.record(value, {**model, "gen_ai.token.type": token_type})
            if (cost := _number(data.get(ev.COST_USD))) is not None:
                self._cost.add(cost, model)
            elif data.get(ev.UNPRICED):
                self._unpriced.add(1, model)
        elif kind == ev.TOOL_CALL:
            tool = str(data.get(ev.TOOL_NAME) or data.get(ev.TOOL) or "tool")
            attrs |= {_OPERATION: "execute_tool", ev.TOOL_NAME: tool}
            attrs |= _strings([(ev.TOOL_CALL_ID, data.get(ev.TOOL_CALL_ID))])
            status = None
            if data.get(ev.IS_ERROR) is True:
                attrs["error.type"], status = "tool_error", self._error()
            self._span(f"execute_tool {tool}", attrs, seconds, end, status)
            if latency is not None:
                self._duration.record(seconds, {_OPERATION: "execute_tool", ev.TOOL_NAME: tool})
        elif kind == ev.CHAT_COMPLETE:
            attrs |= {_OPERATION: "invoke_agent", "gen_ai.agent.name": self.agent_name}
            self._span(f"invoke_agent {self.agent_name}", attrs, seconds, end)
        elif kind == ev.ERROR:
            attrs["error.type"] = str(data.get(ev.ERROR_TYPE) or "error")
            attrs |= _strings([("victor.error.stage", data.get(ev.STAGE))])
            status = self._error(str(data.get(ev.MESSAGE) or "")[:500])
            self._span("victor.error", attrs, 0.0, end, status)

    def _span(
        self, name: str, attrs: dict[str, Any], seconds: float, end: int, status: Any = None
    ) -> None:
        """A finished span: the event's time is its end, its latency its duration."""
        kind = self._kind.CLIENT if attrs.get(_OPERATION) == "chat" else self._kind.INTERNAL
        start = end - int(max(seconds, 0.0) * 1e9)
        span = self._tracer.start_span(
            name, context=self._root, kind=kind, attributes=attrs, start_time=start
        )
        if status is not None:
            span.set_status(status)
        span.end(end_time=end)
