"""The event vocabulary, defined once: event types, attribute names (the OpenTelemetry
GenAI ones where they exist: ``gen_ai.request.model``...) and typed builders.

Builders return an :class:`Event`, a slotted record a third the cost of a pydantic model
(the chat loop builds several a turn); exporters that want the public
:class:`~victor.protocols.AnalyticsEvent` get one, converted in the background.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from victor.protocols.analytics import AnalyticsEvent, EventType, new_event_id
from victor.protocols.messages import Usage

# -- event types (checked against the protocol's EventType) ------------------------------
SESSION_START: EventType = "session_start"
LLM_REQUEST: EventType = "llm_request"
TOKEN_USAGE: EventType = "token_usage"
TOOL_CALL: EventType = "tool_call"
TOOL_SELECTION: EventType = "tool_selection"
ERROR: EventType = "error"
EXPERIMENT_ASSIGNMENT: EventType = "experiment_assignment"
CHAT_COMPLETE: EventType = "chat_complete"
FEEDBACK: EventType = "feedback"
METRIC: EventType = "metric"

# -- attributes: OpenTelemetry GenAI names ------------------------------------------------
MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
PROVIDER = "gen_ai.provider.name"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CACHED_INPUT_TOKENS = "gen_ai.usage.cached_input_tokens"
FINISH_REASONS = "gen_ai.response.finish_reasons"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
CONVERSATION_ID = "gen_ai.conversation.id"
# -- attributes of Victor's own ------------------------------------------------------------
TOOL = "tool"
TOTAL_TOKENS = "total_tokens"
COST_USD = "cost_usd"
UNPRICED = "unpriced"
LATENCY_MS = "latency_ms"
DURATION_MS = "duration_ms"
IS_ERROR = "is_error"
ITERATIONS = "iterations"
TURN_ID = "turn_id"
ERROR_TYPE = "error_type"
MESSAGE = "message"
STAGE = "stage"
EXPERIMENT = "experiment"
VARIANT = "variant"
UNIT_ID = "unit_id"  # the experiment unit (session, user or tenant) a session belongs to
SCORE = "score"
COMMENT = "comment"
METRIC_NAME = "name"
METRIC_VALUE = "value"


@dataclass(frozen=True, slots=True)
class Scope:
    """What every event of a turn shares: its session, tenant, A/B arm and turn."""

    session_id: str | None
    tenant_id: str | None = None
    experiment: str | None = None
    variant: str | None = None
    turn_id: str | None = None


@dataclass(slots=True)
class Event:
    """One analytics event as the chat loop builds it (the fields of ``AnalyticsEvent``)."""

    type: str
    session_id: str | None
    data: dict[str, Any]
    tenant_id: str | None = None
    experiment: str | None = None
    variant: str | None = None
    event_id: str = field(default_factory=new_event_id)
    timestamp: datetime = field(default_factory=partial(datetime.now, UTC))

    def to_model(self) -> AnalyticsEvent:
        """The public pydantic event, with the same values (not validated again)."""
        return AnalyticsEvent.model_construct(**{f: getattr(self, f) for f in self.__slots__})


def _event(type: EventType, scope: Scope, data: dict[str, Any]) -> Event:
    if scope.turn_id is not None:
        data[TURN_ID] = scope.turn_id
    return Event(type, scope.session_id, data, scope.tenant_id, scope.experiment, scope.variant)


def session_start(scope: Scope) -> Event:
    return _event(SESSION_START, scope, {})


def llm_request(
    scope: Scope,
    *,
    model: str,
    response_model: str | None,
    provider: str,
    latency_ms: float,
    usage: Usage,
    finish_reason: str | None,
) -> Event:
    return _event(
        LLM_REQUEST,
        scope,
        {
            MODEL: model,
            RESPONSE_MODEL: response_model,
            PROVIDER: provider,
            LATENCY_MS: latency_ms,
            INPUT_TOKENS: usage.input_tokens,
            OUTPUT_TOKENS: usage.output_tokens,
            FINISH_REASONS: [finish_reason],
        },
    )


def token_usage(
    scope: Scope, *, model: str, provider: str | None, usage: Usage, cost_usd: float | None
) -> Event:
    """Tokens (and their cost, None when the model is unpriced) of a turn's model calls."""
    return _event(
        TOKEN_USAGE,
        scope,
        {
            MODEL: model,
            PROVIDER: provider,
            INPUT_TOKENS: usage.input_tokens,
            OUTPUT_TOKENS: usage.output_tokens,
            CACHED_INPUT_TOKENS: usage.cached_input_tokens,
            TOTAL_TOKENS: usage.input_tokens + usage.output_tokens,
            COST_USD: cost_usd,
            UNPRICED: cost_usd is None,
        },
    )


def tool_call(
    scope: Scope, *, tool: str, call_id: str | None, duration_ms: float, is_error: bool
) -> Event:
    return _event(
        TOOL_CALL,
        scope,
        {
            TOOL: tool,
            TOOL_NAME: tool,
            TOOL_CALL_ID: call_id,
            DURATION_MS: duration_ms,
            IS_ERROR: is_error,
        },
    )


def tool_selection(scope: Scope, data: dict[str, Any]) -> Event:
    """Which tools a turn offered and why (``SelectionResult.event_data()``)."""
    return _event(TOOL_SELECTION, scope, data)


def chat_complete(
    scope: Scope,
    *,
    model: str,
    latency_ms: float,
    iterations: int,
    total_tokens: int,
    cost_usd: float | None,
) -> Event:
    """A turn that answered."""
    return _event(
        CHAT_COMPLETE,
        scope,
        {
            MODEL: model,
            LATENCY_MS: latency_ms,
            ITERATIONS: iterations,
            TOTAL_TOKENS: total_tokens,
            COST_USD: cost_usd,
        },
    )


def error(scope: Scope, exc: BaseException, stage: str) -> Event:
    """A failure at ``stage`` (``prepare``, ``turn``, ``llm``...)."""
    data = {ERROR_TYPE: type(exc).__name__, MESSAGE: str(exc)[:500], STAGE: stage}
    return _event(ERROR, scope, data)


def experiment_assignment(
    scope: Scope, *, experiment: str, variant: str, unit_id: str | None = None
) -> Event:
    """A session assigned to an A/B arm through its unit ``unit_id`` (session, user, tenant)."""
    return _event(
        EXPERIMENT_ASSIGNMENT,
        scope,
        {EXPERIMENT: experiment, VARIANT: variant, UNIT_ID: unit_id},
    )


def feedback(scope: Scope, *, score: float, comment: str | None = None) -> Event:
    """A user's rating of an answer."""
    return _event(FEEDBACK, scope, {SCORE: score, COMMENT: comment})


def metric(scope: Scope, *, name: str, value: float) -> Event:
    """A user-defined outcome of a session (a conversion, a task solved, a rating)."""
    return _event(METRIC, scope, {METRIC_NAME: name, METRIC_VALUE: value})
