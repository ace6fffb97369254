"""Recipe 9: A/B testing -- sticky variants of a session's config, and their analysis.

Runs offline (a simulated model; assignments and analytics in SQLite):

    python examples/recipe_9_ab_testing.py

Each session gets a variant from a hash of the experiment's seed and its id: the same on
every host and every run. The assignment table keeps it even when the weights change.
The variant's config applies over the base config; the response and every analytics
event of the session carry the experiment and the variant.
"""

import asyncio

from victor import AgentOrchestrator, Settings
from victor.agent.coordinators import AnalyticsCoordinator, ExperimentConfigCoordinator
from victor.analytics import SQLiteAnalyticsExporter
from victor.experiments import Experiment, SQLiteAssignmentTable, analyze, srm_check
from victor.providers import SimulatedProvider


async def main() -> None:
    settings = Settings()
    experiment = Experiment(
        name="answer-model",
        variants={
            "control": {"model": "gpt-4o-mini", "temperature": 0.7},
            "haiku": {"model": "claude-haiku-4-5", "temperature": 0.3},
        },
        weights={"control": 0.5, "haiku": 0.5},
        seed="answer-model-1",
    )
    analytics = AnalyticsCoordinator([SQLiteAnalyticsExporter(settings.data_dir / "analytics.db")])
    coordinator = ExperimentConfigCoordinator(
        experiment,
        table=SQLiteAssignmentTable(settings.data_dir / "experiments.db"),
        analytics=analytics,  # one experiment_assignment event per session
    )
    provider = SimulatedProvider(
        seed=9, model_quality={"gpt-4o-mini": 0.70, "claude-haiku-4-5": 0.80}
    )
    good: dict[str, list[float]] = {name: [] for name in experiment.variants}
    async with AgentOrchestrator(
        settings=settings,
        provider=provider,
        _config_coordinator=coordinator,
        _analytics_coordinator=analytics,
    ) as orchestrator:
        response = await orchestrator.chat("Hello", session_id="user-0")
        print(f"user-0: experiment={response.experiment} variant={response.variant}")
        for i in range(400):
            response = await orchestrator.chat("Summarise my invoice", session_id=f"user-{i}")
            assert response.variant is not None
            good[response.variant].append(float(response.raw["good"]))

    counts = {name: len(values) for name, values in good.items()}
    srm = srm_check(counts, experiment.weights)
    print(f"sessions per variant: {counts}; SRM {'flagged' if srm.flagged else 'ok'}")
    result = analyze(good, control="control", kind="proportion")
    lift = result.comparisons["haiku"]
    low, high = lift.absolute_ci
    print(
        f"good answers: control {result.variants['control'].mean:.0%}, "
        f"haiku {result.variants['haiku'].mean:.0%}; "
        f"haiku {lift.absolute:+.1%} (95% CI {low:+.1%}..{high:+.1%}, p={lift.p_value:.2g})"
    )


asyncio.run(main())
