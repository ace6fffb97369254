"""The experiment report, from the SQLite analytics store the orchestrator fills."""

from __future__ import annotations

import asyncio
import json
import random

import pytest

from victor.agent.coordinators import AnalyticsCoordinator, ExperimentConfigCoordinator
from victor.agent.orchestrator import AgentOrchestrator
from victor.analytics import events
from victor.analytics.exporters.sqlite import SQLiteAnalyticsExporter
from victor.config.settings import Settings
from victor.errors import ExperimentDataError
from victor.experiments import Experiment, benjamini_hochberg, holm, report
from victor.protocols import Usage
from victor.providers import SimulatedProvider

EXPERIMENT = Experiment(
    "answer-model",
    {"control": {"model": "gpt-4o-mini"}, "haiku": {"model": "claude-haiku-4-5"}},
    seed="r-1",
)


async def _fill(tmp_path, sessions: int = 300):
    db = tmp_path / "analytics.db"
    analytics = AnalyticsCoordinator([SQLiteAnalyticsExporter(db)])
    coordinator = ExperimentConfigCoordinator(EXPERIMENT, analytics=analytics)
    provider = SimulatedProvider(
        seed=3, model_quality={"gpt-4o-mini": 0.6, "claude-haiku-4-5": 0.85}
    )
    async with AgentOrchestrator(
        settings=Settings(),
        provider=provider,
        _config_coordinator=coordinator,
        _analytics_coordinator=analytics,
    ) as orchestrator:
        for i in range(sessions):
            response = await orchestrator.chat("Hello", session_id=f"s-{i}")
            await orchestrator.record_feedback(f"s-{i}", float(response.raw["good"]))
            await orchestrator.record_metric(f"s-{i}", "csat", 3 + (i % 3))
    return db


async def test_the_report_compares_every_metric_and_says_ship(tmp_path):
    db = await _fill(tmp_path)
    result = await report(EXPERIMENT, store=db)
    assert sum(result.units.values()) == 300 and not result.srm.flagged
    names = {m.name for m in result.metrics}
    assert {"latency_ms", "latency_p95_ms", "tokens", "cost_usd", "errors", "feedback"} <= names
    assert "csat" in names and "tool_errors" in result.skipped  # no tools: no tool calls
    feedback = result.metric("feedback")
    assert (feedback.kind, feedback.label, result.primary) == (
        "proportion",
        "good answers",
        "feedback",
    )
    # Holm across the variant's metrics, as holm() gives it.
    family = {m.name: m.analysis.comparisons["haiku"].p_value for m in result.metrics}
    assert {m.name: m.adjusted_p["haiku"] for m in result.metrics} == holm(family)
    verdict = result.verdicts["haiku"]
    assert verdict.decision == "ship"
    assert verdict.line.startswith("haiku: +") and "good answers (95% CI +" in verdict.line
    assert "cost +" in verdict.line and verdict.line.endswith("; SRM ok -> ship")
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["verdicts"]["haiku"]["decision"] == "ship"
    assert payload["metrics"][0]["variants"]["control"]["n"] > 0
    assert payload["correction"] == "holm"
    bh = await report(EXPERIMENT, store=db, correction="bh")
    assert bh.correction == "bh" and bh.to_dict()["correction"] == "bh"
    assert {m.name: m.adjusted_p["haiku"] for m in bh.metrics} == benjamini_hochberg(family)
    with pytest.raises(ValueError, match="correction 'bonferroni' unknown; accepted: holm, bh"):
        await report(EXPERIMENT, store=db, correction="bonferroni")


async def _write(db, rows):
    """Events made by the builders, straight into the store."""
    exporter = SQLiteAnalyticsExporter(db)
    result = await exporter.export([event.to_model() for event in rows])
    assert result.success
    await exporter.shutdown()


def _session(session_id: str, variant: str, *, failed: bool, good: bool) -> list:
    scope = events.Scope(session_id, None, "guard", variant)
    made = [events.experiment_assignment(scope, experiment="guard", variant=variant)]
    if failed:
        made.append(events.error(scope, RuntimeError("boom"), "turn"))
    else:
        made.append(
            events.token_usage(
                scope,
                model="m",
                provider="p",
                usage=Usage(input_tokens=10, output_tokens=5, requests=1),
                cost_usd=0.01,
            )
        )
        made.append(
            events.chat_complete(
                scope, model="m", latency_ms=100.0, iterations=1, total_tokens=15, cost_usd=0.01
            )
        )
    made.append(events.feedback(scope, score=float(good)))
    return made


async def test_a_guardrail_stops_a_variant_and_a_broken_split_never_ships(tmp_path):
    rng = random.Random(1)
    rows = []
    for i in range(400):
        variant = "control" if i < 200 else "risky"
        failed = rng.random() < (0.02 if variant == "control" else 0.3)
        rows += _session(
            f"s-{i}",
            variant,
            failed=failed,
            good=rng.random() < (0.5 if variant == "control" else 0.8),
        )
    db = tmp_path / "guard.db"
    await _write(db, rows)
    result = await report("guard", store=db)
    verdict = result.verdicts["risky"]
    assert result.metric("feedback").better("risky", 0.05)  # better answers, but:
    assert verdict.decision == "stop" and verdict.guardrails_breached == ("errors",)
    assert "guardrail errors +" in verdict.line

    skewed = tmp_path / "skewed.db"
    await _write(
        skewed,
        [
            e
            for i in range(300)
            for e in _session(
                f"s-{i}",
                "control" if i < 100 else "b",
                failed=False,
                good=rng.random() < (0.3 if i < 100 else 0.9),
            )
        ],
    )
    result = await report("guard", store=skewed)
    assert result.srm.flagged and result.srm.p_value < 0.001
    assert result.metric("feedback").better("b", 0.05)
    assert result.verdicts["b"].decision == "check split"
    assert "SRM failed" in result.verdicts["b"].line


async def test_report_inputs_that_cannot_work_are_clear_errors(tmp_path):
    db = tmp_path / "a.db"
    await _write(db, _session("s-1", "a", failed=False, good=True))
    with pytest.raises(ExperimentDataError, match="no events of experiment 'other'"):
        await report("other", store=db)
    with pytest.raises(ExperimentDataError, match="control 'zzz' is not a variant"):
        await report("guard", store=db, control="zzz")
    with pytest.raises(ExperimentDataError, match="variant\\(s\\) a that the weights do not name"):
        await report("guard", store=db, weights={"b": 0.5, "c": 0.5})
    with pytest.raises(FileNotFoundError, match="no analytics database"):
        await report("guard", store=tmp_path / "missing.db")


def test_the_cli_prints_the_report_as_tables_or_json(tmp_path):
    from typer.testing import CliRunner

    from victor.cli.main import app

    db = asyncio.run(_fill(tmp_path, sessions=120))
    runner = CliRunner()
    shown = runner.invoke(app, ["experiments", "report", "answer-model", "--db", str(db)])
    assert shown.exit_code == 0, shown.output
    assert "good answers" in shown.output and "p holm" in shown.output
    assert "haiku: +" in shown.output and "SRM ok" in shown.output
    plain = runner.invoke(app, ["experiments", "report", "answer-model", "--db", str(db), "--json"])
    assert json.loads(plain.stdout)["units"] == asyncio.run(report(EXPERIMENT, store=db)).units
    args = ["experiments", "report", "answer-model", "--db", str(db), "--correction", "bh"]
    bh = runner.invoke(app, args)
    assert bh.exit_code == 0 and " p bh ┃" in bh.output and " p holm ┃" not in bh.output
    assert json.loads(runner.invoke(app, [*args, "--json"]).stdout)["correction"] == "bh"
    wrong = runner.invoke(app, [*args[:-1], "fdr"])
    assert wrong.exit_code == 2 and "'fdr' is not one of 'holm', 'bh'" in wrong.output
    file = tmp_path / "experiments.yaml"
    file.write_text(
        "experiments:\n  - name: answer-model\n    variants: {control: {}, haiku: {}}\n"
        "    weights: {control: 0.9, haiku: 0.1}\n"
    )
    skewed = runner.invoke(
        app, ["experiments", "report", "answer-model", "--db", str(db), "--experiments", str(file)]
    )
    assert skewed.exit_code == 0 and "SRM failed" in skewed.output  # 50/50 against 90/10
    for args, message in [
        (["nope", "--db", str(db)], "error: no events of experiment 'nope'"),
        (["answer-model", "--db", str(tmp_path / "x.db")], "error: no analytics database"),
        (["other", "--db", str(db), "--experiments", str(file)], "defines no experiment 'other'"),
    ]:
        result = runner.invoke(app, ["experiments", "report", *args])
        assert result.exit_code == 2 and message in result.output
        assert "Traceback" not in result.output


@pytest.mark.parametrize("unit", ["user", "tenant"])
async def test_the_report_aggregates_per_unit_of_the_experiment(tmp_path, unit):
    experiment = Experiment(
        "by-unit",
        {"control": {"model": "gpt-4o-mini"}, "haiku": {"model": "claude-haiku-4-5"}},
        seed="u-1",
        unit=unit,
    )
    db = tmp_path / "analytics.db"
    analytics = AnalyticsCoordinator([SQLiteAnalyticsExporter(db)])
    coordinator = ExperimentConfigCoordinator(experiment, analytics=analytics)
    provider = SimulatedProvider(seed=5)
    scores: dict[str, list[float]] = {}
    async with AgentOrchestrator(
        settings=Settings(),
        provider=provider,
        _config_coordinator=coordinator,
        _analytics_coordinator=analytics,
    ) as orchestrator:
        for owner in range(40):  # 40 units of three sessions each
            for i in range(3):
                session_id, config = f"s-{owner}-{i}", {"user_id": f"u-{owner}"}
                if unit == "tenant":
                    session_id, config = f"t{owner}:s-{i}", {}
                response = await orchestrator.chat("Hello", session_id=session_id, config=config)
                score = float((owner + i) % 3 == 0)
                await orchestrator.record_feedback(session_id, score)
                scores.setdefault(response.variant, []).append(score)
    result = await report(experiment, store=db)
    assert result.unit == unit and result.to_dict()["unit"] == unit, result.skipped
    assert "feedback" not in result.skipped, result.skipped
    assert sum(result.units.values()) == 40  # units, not the 120 sessions
    assert result.units["control"] == sum(
        experiment.assign(f"u-{o}" if unit == "user" else f"t{o}") == "control" for o in range(40)
    )
    feedback = result.metric("feedback").analysis.variants
    for variant, summary in feedback.items():
        assert summary.n == result.units[variant]
        # The mean of per-unit means of three sessions is the mean over the sessions.
        assert summary.mean == pytest.approx(sum(scores[variant]) / len(scores[variant]))
    assert result.metric("tokens").analysis.variants["control"].n == result.units["control"]
    per_session = await report(experiment, store=db, unit="session")
    assert sum(per_session.units.values()) == 120
    with pytest.raises(ValueError, match="unit 'device' unknown; accepted: session, user"):
        await report(experiment, store=db, unit="device")
