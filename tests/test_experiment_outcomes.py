"""Outcomes recorded after the turns: feedback and custom metrics in the session's scope."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from victor.agent.coordinators import (
    AnalyticsCoordinator,
    ConfigCoordinator,
    ExperimentConfigCoordinator,
)
from victor.agent.orchestrator import AgentOrchestrator
from victor.analytics.exporters.base import BaseAnalyticsExporter
from victor.config.settings import Settings
from victor.experiments import Experiment
from victor.protocols import AnalyticsEvent, ExportResult
from victor.providers import ScriptedProvider


class Collect(BaseAnalyticsExporter):
    def __init__(self) -> None:
        self.events: list[AnalyticsEvent] = []

    async def export(self, events: Sequence[AnalyticsEvent]) -> ExportResult:
        self.events.extend(events)
        return ExportResult(success=True, exported_count=len(events))


def _orchestrator(tmp_path, config: ConfigCoordinator | None = None):
    sink = Collect()
    analytics = AnalyticsCoordinator([sink], outbox_path=tmp_path / "outbox.db")
    if isinstance(config, ExperimentConfigCoordinator):
        config.analytics = analytics
    orchestrator = AgentOrchestrator(
        settings=Settings(),
        provider=ScriptedProvider(["ok"], cycle=True),
        model="m",
        _config_coordinator=config,
        _analytics_coordinator=analytics,
    )
    return orchestrator, sink


async def test_feedback_and_metrics_carry_the_sessions_tenant_experiment_and_variant(tmp_path):
    experiment = Experiment("prompt", {"control": {}, "short": {"max_tokens": 50}}, seed="p-1")
    orchestrator, sink = _orchestrator(tmp_path, ExperimentConfigCoordinator(experiment))
    sessions = [f"acme:s-{i}" for i in range(10)]
    for session_id in sessions:
        await orchestrator.chat("Hi", session_id=session_id)
        await orchestrator.record_feedback(session_id, 1, comment="good answer")
        await orchestrator.record_metric(session_id, "resolved", 0.5)
    await orchestrator.record_feedback("s-0", 0.0, tenant_id="acme")  # scoped like chat
    await orchestrator.aclose()
    feedback = [e for e in sink.events if e.type == "feedback"]
    metrics = [e for e in sink.events if e.type == "metric"]
    assert [e.session_id for e in feedback] == [*sessions, "acme:s-0"]
    assert [e.session_id for e in metrics] == sessions
    for event in feedback + metrics:
        assert event.tenant_id == "acme"
        assert event.experiment == "prompt"
        assert event.variant == experiment.assign(event.session_id)
    assert feedback[0].data["score"] == 1.0 and feedback[0].data["comment"] == "good answer"
    assert metrics[0].data == {"name": "resolved", "value": 0.5}
    # Sticky: the outcome events did not assign the units a second time.
    assert len([e for e in sink.events if e.type == "experiment_assignment"]) == 10


async def test_outcomes_without_an_experiment_or_with_analytics_off(tmp_path):
    orchestrator, sink = _orchestrator(tmp_path)
    await orchestrator.record_metric("s-1", "converted", 1)
    await orchestrator.aclose()
    (event,) = [e for e in sink.events if e.type == "metric"]
    assert (event.experiment, event.variant, event.tenant_id) == (None, None, None)

    class Off(ConfigCoordinator):
        async def load_config(self, session_id, config_override=None):
            return {"enable_analytics": False}

    orchestrator, sink = _orchestrator(tmp_path, Off())
    await orchestrator.record_feedback("s-1", 1)
    await orchestrator.aclose()
    assert not [e for e in sink.events if e.type == "feedback"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda o: o.record_feedback("s", "great"), "score must be a finite number"),
        (lambda o: o.record_feedback("s", math.nan), "score must be a finite number"),
        (lambda o: o.record_feedback("s", True), "score must be a finite number"),
        (lambda o: o.record_metric("s", "", 1.0), "metric name must be a non-empty string"),
        (lambda o: o.record_metric("s", "x", math.inf), "value of metric 'x' must be a finite"),
    ],
)
async def test_bad_outcomes_are_refused_with_a_clear_error(tmp_path, call, message):
    orchestrator, sink = _orchestrator(tmp_path)
    with pytest.raises(ValueError, match=message):
        await call(orchestrator)
    await orchestrator.aclose()
    assert not [e for e in sink.events if e.type in ("feedback", "metric")]
