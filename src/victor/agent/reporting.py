"""What a turn tells analytics, and what it costs."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from victor.analytics import events
from victor.protocols import ChatResponse, ToolResult, Usage
from victor.protocols.tenancy import tenant_of

if TYPE_CHECKING:
    from victor.agent.coordinators.analytics_coordinator import AnalyticsCoordinator
    from victor.agent.coordinators.config_coordinator import ConfigCoordinator
    from victor.agent.coordinators.context_coordinator import Compaction
    from victor.agent.turn import Turn
    from victor.pricing import PriceTable


class TurnReporter:
    """Prices a turn and emits its events (when the turn has analytics on)."""

    def __init__(
        self, analytics: AnalyticsCoordinator, prices: PriceTable, provider_name: str
    ) -> None:
        self.analytics = analytics
        self.prices = prices
        self.provider_name = provider_name

    def cost(self, turn: Turn, model: str) -> float | None:
        """The turn's cost, a summary made by another model priced at that model's rates."""
        side = turn.compaction_usage
        if side is None or turn.compaction_model == model:
            return self.prices.cost(model, turn.usage)
        usage = turn.usage
        main = Usage(
            input_tokens=usage.input_tokens - side.input_tokens,
            output_tokens=usage.output_tokens - side.output_tokens,
            cached_input_tokens=usage.cached_input_tokens - side.cached_input_tokens,
            requests=usage.requests - side.requests,
        )
        costs = (
            self.prices.cost(model, main),
            self.prices.cost(turn.compaction_model or model, side),
        )
        return None if None in costs else sum(c for c in costs if c is not None)

    def model_call(self, turn: Turn, response: ChatResponse, latency_ms: float) -> None:
        turn.usage = turn.usage + response.usage
        if turn.analytics:
            self.analytics.emit(
                events.llm_request(
                    turn.scope,
                    model=turn.model,
                    response_model=response.model,
                    provider=self.provider_name,
                    latency_ms=latency_ms,
                    usage=response.usage,
                    finish_reason=response.finish_reason,
                )
            )

    def compaction(self, turn: Turn, compaction: Compaction, latency_ms: float) -> None:
        """A strategy's model call (a summary) is part of the turn's usage and cost."""
        usage = compaction.usage
        assert usage is not None
        turn.usage = turn.usage + usage
        turn.compaction_usage = usage
        turn.compaction_model = compaction.usage_model or turn.model
        if turn.analytics:
            event = events.llm_request(
                turn.scope,
                model=turn.compaction_model,
                response_model=turn.compaction_model,
                provider=self.provider_name,
                latency_ms=latency_ms,
                usage=usage,
                finish_reason=None,
            )
            # Told apart from the turn's own calls: what compaction spent, and how.
            event.data["purpose"] = "context_compaction"
            event.data["compaction_strategy"] = compaction.strategy
            self.analytics.emit(event)

    def tool_selection(self, turn: Turn, data: dict[str, Any]) -> None:
        if turn.analytics:
            self.analytics.emit(events.tool_selection(turn.scope, data))

    def tool_result(self, turn: Turn, result: ToolResult) -> None:
        if turn.analytics:
            self.analytics.emit(
                events.tool_call(
                    turn.scope,
                    tool=result.call.name,
                    call_id=result.call.id,
                    duration_ms=result.duration_ms,
                    is_error=result.is_error,
                )
            )

    def _usage(self, turn: Turn, model: str, cost: float | None) -> None:
        self.analytics.emit(
            events.token_usage(
                turn.scope, model=model, provider=self.provider_name, usage=turn.usage,
                cost_usd=cost,
            )
        )  # fmt: skip

    def finished(self, turn: Turn, model: str, cost: float | None, latency_ms: float) -> None:
        if not turn.analytics:
            return
        if turn.is_new:  # only once the first turn succeeded: a retry is no new session
            self.analytics.emit(events.session_start(turn.scope))
        self._usage(turn, model, cost)
        self.analytics.emit(
            events.chat_complete(
                turn.scope,
                model=turn.model,
                latency_ms=latency_ms,
                iterations=turn.iterations,
                total_tokens=turn.usage.total_tokens,
                cost_usd=cost,
            )
        )

    def failed(self, turn: Turn, exc: BaseException, stage: str = "turn") -> None:
        """A failed turn still reports what it cost: tokens spent before the failure."""
        if not turn.analytics:
            return
        self.analytics.emit(events.error(turn.scope, exc, stage))
        if turn.usage.requests:
            self._usage(turn, turn.model, self.cost(turn, turn.model))

    def prepare_failed(self, session_id: str, exc: BaseException) -> None:
        """A turn that failed before it had a config (no turn to report on yet)."""
        if self.analytics.enabled:
            scope = events.Scope(session_id, tenant_of(session_id))
            self.analytics.emit(events.error(scope, exc, "prepare"))

    # -- outcomes recorded after the turns --------------------------------------------

    async def feedback(
        self, configs: ConfigCoordinator, session_id: str, score: float, comment: str | None
    ) -> None:
        """A user's rating of the session, in the session's scope."""
        score = _finite("score", score)
        if comment is not None and not isinstance(comment, str):
            raise TypeError(f"comment must be a string or None, not {type(comment).__name__}")
        scope = await self._outcome_scope(configs, session_id)
        if scope is not None:
            self.analytics.emit(events.feedback(scope, score=score, comment=comment))

    async def metric(
        self, configs: ConfigCoordinator, session_id: str, name: str, value: float
    ) -> None:
        """A user-defined outcome of the session, in the session's scope."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"metric name must be a non-empty string, not {name!r}")
        value = _finite(f"value of metric {name!r}", value)
        scope = await self._outcome_scope(configs, session_id)
        if scope is not None:
            self.analytics.emit(events.metric(scope, name=name, value=value))

    async def _outcome_scope(
        self, configs: ConfigCoordinator, session_id: str
    ) -> events.Scope | None:
        """The session's tenant, and the experiment and variant its config names (sticky,
        so those its turns ran with); None when analytics is off for the session."""
        if not self.analytics.enabled:
            return None
        config = await configs.load_config(session_id)
        if config.get("enable_analytics", True) is False:
            return None
        return events.Scope(
            session_id,
            tenant_of(session_id),
            config.get(events.EXPERIMENT),
            config.get(events.VARIANT),
        )


def _finite(what: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, not {value!r}")
    return float(value)
