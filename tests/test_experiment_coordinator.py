"""ExperimentConfigCoordinator: the variant's config in the turn, the response and analytics."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from victor.agent.coordinators.analytics_coordinator import (
    AnalyticsCoordinator,
    BaseAnalyticsExporter,
)
from victor.agent.coordinators.experiment_coordinator import ExperimentConfigCoordinator
from victor.agent.orchestrator import AgentOrchestrator
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


async def test_each_session_runs_its_variant_and_events_carry_it(tmp_path):
    experiment = Experiment(
        "temperature",
        {"control": {"temperature": 0.7}, "cool": {"temperature": 0.2, "model": "small"}},
        seed="t-1",
    )
    sink = Collect()
    analytics = AnalyticsCoordinator([sink], outbox_path=tmp_path / "outbox.db")
    coordinator = ExperimentConfigCoordinator(experiment, analytics=analytics)
    provider = ScriptedProvider(["ok"], cycle=True)
    orchestrator = AgentOrchestrator(
        settings=Settings(),
        provider=provider,
        model="base-model",
        _config_coordinator=coordinator,
        _analytics_coordinator=analytics,
    )
    sessions = [f"s-{i}" for i in range(40)]
    for session_id in sessions + sessions[:5]:  # five sessions come back
        response = await orchestrator.chat("Hello", session_id=session_id)
        variant = experiment.assign(session_id)
        assert (response.experiment, response.variant) == ("temperature", variant)
    for call, session_id in zip(provider.calls, sessions + sessions[:5], strict=True):
        expected = experiment.variants[experiment.assign(session_id)]
        assert call["temperature"] == expected["temperature"]
        assert call["model"] == expected.get("model", "base-model")
    await analytics.flush()
    assignments = [e for e in sink.events if e.type == "experiment_assignment"]
    assert Counter(e.session_id for e in assignments) == Counter(sessions)  # once per unit
    assert all(e.variant == experiment.assign(e.session_id) for e in assignments)
    completes = [e for e in sink.events if e.type == "chat_complete"]
    assert all(e.experiment == "temperature" and e.variant for e in completes)
    await orchestrator.aclose()


async def test_a_unit_outside_the_experiment_gets_the_base_config():
    experiment = Experiment("off", {"a": {"temperature": 0.1}, "b": {}}, status="draft")
    coordinator = ExperimentConfigCoordinator(experiment)
    config = await coordinator.load_config("s-1", {"max_tokens": 10})
    assert config == {"max_tokens": 10}
