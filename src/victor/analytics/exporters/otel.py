"""Sends events to OpenTelemetry as spans and metrics named by the GenAI conventions.

Model calls become ``chat {model}`` client spans, tool calls ``execute_tool {tool}`` spans,
chat turns ``invoke_agent`` spans; token usage and durations feed the standard
``gen_ai.client.token.usage`` and ``gen_ai.client.operation.duration`` histograms. Spans are
created after the fact, with start and end times taken from the event (its timestamp is
the end, ``latency_ms`` the duration), in a worker thread so a slow SDK pipeline never
stalls the event loop. Needs ``opentelemetry-api`` (the ``otel`` extra);
without an SDK configured the global providers are no-ops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from victor.analytics import events as ev
from victor.analytics.encoding import EventEncodeError, event_label
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
from victor.analytics.exporters.base import BaseAnalyticsExporter, partial_result
from victor.protocols.analytics import AnalyticsEvent, ExportResult

_SCOPE = "victor.analytics"


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


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

        self._kind, self._status, self._code = SpanKind, Status, StatusCode
        self._root = Context()  # spans are roots, not children of whatever ran last
        self.agent_name = agent_name
        if name:
            self.name = name
        self._tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer(_SCOPE)
        meter = (meter_provider or metrics.get_meter_provider()).get_meter(_SCOPE)
        self._tokens = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}", description="Tokens per model call"
        )
        self._duration = meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s", description="Model call duration"
        )
        self._cost = meter.create_counter(
            "victor.gen_ai.cost", unit="USD", description="Cost of model calls (priced models)"
        )
        self._unpriced = meter.create_counter(
            "victor.gen_ai.unpriced_calls", unit="{call}", description="Calls of unpriced models"
        )
        self._events = meter.create_counter(
            "victor.analytics.events", unit="{event}", description="Analytics events by type"
        )
        self._tool_duration = meter.create_histogram(
            "victor.tool.duration", unit="s", description="Tool execution duration"
        )

    async def export(self, events: Sequence[AnalyticsEvent]) -> ExportResult:
        # Off the loop: the SDK's span processors may export synchronously (a
        # SimpleSpanProcessor to a slow collector), which would stall every chat turn.
        return await asyncio.to_thread(self._export, tuple(events))

    def _export(self, events: Sequence[AnalyticsEvent]) -> ExportResult:
        rejected: list[EventEncodeError] = []
        for event in events:
            try:
                self._one(event)
            except EventEncodeError as exc:
                rejected.append(exc)
            except Exception as exc:
                rejected.append(EventEncodeError(event_label(event), f"OpenTelemetry: {exc!r}"))
        return partial_result(len(events) - len(rejected), rejected)

    def _one(self, event: AnalyticsEvent) -> None:
        eid = event_label(event)
        kind, data, ts = event.type, event.data, event.timestamp
        if not isinstance(kind, str) or not isinstance(data, dict):
            raise EventEncodeError(eid, "type must be a string and data a dict")
        if not isinstance(ts, datetime):
            raise EventEncodeError(eid, "timestamp must be a datetime")
        common: dict[str, Any] = {"victor.event.type": kind}
        for key, value in (
            (ev.CONVERSATION_ID, event.session_id),
            ("victor.tenant.id", event.tenant_id),
            ("victor.experiment", event.experiment),
            ("victor.variant", event.variant),
        ):
            if isinstance(value, str):
                common[key] = value
        self._events.add(1, {"victor.event.type": kind})
        end_ns = int(ts.timestamp() * 1e9)
        if kind == ev.LLM_REQUEST:
            self._llm_request(data, common, end_ns)
        elif kind == ev.TOKEN_USAGE:
            self._token_usage(data)
        elif kind == ev.TOOL_CALL:
            self._tool_call(data, common, end_ns)
        elif kind == ev.CHAT_COMPLETE:
            attrs = {**common, "gen_ai.operation.name": "invoke_agent"}
            attrs["gen_ai.agent.name"] = self.agent_name
            self._span(f"invoke_agent {self.agent_name}", attrs, data, end_ns, "INTERNAL")
        elif kind == ev.ERROR:
            attrs = {**common, "error.type": str(data.get(ev.ERROR_TYPE) or "error")}
            if isinstance(data.get(ev.STAGE), str):
                attrs["victor.error.stage"] = data[ev.STAGE]
            span = self._span("victor.error", attrs, {}, end_ns, "INTERNAL", end=False)
            span.set_status(self._status(self._code.ERROR, str(data.get(ev.MESSAGE) or "")[:500]))
            span.end(end_time=end_ns)

    def _model_attrs(self, data: dict[str, Any]) -> dict[str, Any]:
        attrs: dict[str, Any] = {"gen_ai.operation.name": "chat"}
        for key in (MODEL, PROVIDER):
            if isinstance(data.get(key), str):
                attrs[key] = data[key]
        return attrs

    def _llm_request(self, data: dict[str, Any], common: dict[str, Any], end_ns: int) -> None:
        attrs = {**common, **self._model_attrs(data)}
        for key in (INPUT_TOKENS, OUTPUT_TOKENS, CACHED_INPUT_TOKENS):
            value = _number(data.get(key))
            if value is not None:
                attrs[key] = int(value)
        reasons = data.get(FINISH_REASONS)
        if isinstance(reasons, list | tuple):
            attrs[FINISH_REASONS] = [str(r) for r in reasons]
        self._span(f"chat {data.get(MODEL) or ''}".strip(), attrs, data, end_ns, "CLIENT")
        latency = _number(data.get(ev.LATENCY_MS))
        if latency is not None:
            self._duration.record(latency / 1000.0, self._model_attrs(data))

    def _token_usage(self, data: dict[str, Any]) -> None:
        metric_attrs = self._model_attrs(data)
        for key, token_type in ((INPUT_TOKENS, "input"), (OUTPUT_TOKENS, "output")):
            value = _number(data.get(key))
            if value is not None:
                self._tokens.record(value, {**metric_attrs, "gen_ai.token.type": token_type})
        cost = _number(data.get(ev.COST_USD))
        if cost is not None:
            self._cost.add(cost, metric_attrs)
        elif data.get(ev.UNPRICED):
            self._unpriced.add(1, metric_attrs)

    def _tool_call(self, data: dict[str, Any], common: dict[str, Any], end_ns: int) -> None:
        tool = data.get(TOOL_NAME) or data.get(ev.TOOL) or "tool"
        attrs = {**common, "gen_ai.operation.name": "execute_tool", TOOL_NAME: str(tool)}
        if isinstance(data.get(TOOL_CALL_ID), str):
            attrs[TOOL_CALL_ID] = data[TOOL_CALL_ID]
        failed = data.get(ev.IS_ERROR) is True
        if failed:
            attrs["error.type"] = "tool_error"
        span = self._span(f"execute_tool {tool}", attrs, data, end_ns, "INTERNAL", end=False)
        if failed:
            span.set_status(self._status(self._code.ERROR))
        span.end(end_time=end_ns)
        duration = _number(data.get(ev.DURATION_MS))
        if duration is not None:
            self._tool_duration.record(duration / 1000.0, {TOOL_NAME: str(tool)})

    def _span(
        self,
        name: str,
        attrs: dict[str, Any],
        data: dict[str, Any],
        end_ns: int,
        kind: str,
        end: bool = True,
    ) -> Any:
        latency = _number(data.get(ev.LATENCY_MS)) or _number(data.get(ev.DURATION_MS)) or 0.0
        start_ns = end_ns - int(max(latency, 0.0) * 1e6)
        span = self._tracer.start_span(
            name,
            context=self._root,
            kind=getattr(self._kind, kind),
            attributes=attrs,
            start_time=start_ns,
        )
        if end:
            span.end(end_time=end_ns)
        return span
