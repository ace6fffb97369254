"""An experiment's report, from the analytics store: every metric per variant, the split
checked, Holm (or Benjamini-Hochberg) across metrics, guardrails and a verdict line per variant.

```python
from victor.experiments import report

result = await report("answer-model", store="~/.local/share/victor/analytics.db")
print("\\n".join(result.lines()))  # "haiku: +14.3% good answers (95% CI ...); SRM ok -> ship"
result.to_dict()                   # the same as JSON (``victor experiments report NAME --json``)
```

The unit is the experiment's: the session, the tenant (every event names it) or the
user (the ``experiment_assignment`` event of each session names its unit; a session
without one is left out). Metrics per unit, from the events of the experiment:
``latency_ms`` (mean turn latency), ``latency_p95_ms`` (95th percentile over turns),
``tokens`` and ``cost_usd`` (sums), ``errors`` (failed turns / turns, a ratio) and
``tool_errors`` (failed tool calls / tool calls), ``feedback`` (the unit's mean score,
from ``record_feedback``) and each custom metric (the unit's mean value, from
``record_metric``; only units that recorded it count). A metric whose values are all 0
or 1 per unit is a proportion.

Decisions: a variant whose guardrail metric is significantly worse (after the correction) is to
``stop``; while the split fails the sample-ratio-mismatch check (p < 0.001) no variant is
to ``ship`` (``check split``); a primary metric significantly better is ``ship``,
significantly worse ``stop``, else ``keep running``.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from victor.analytics.events import (
    EXPERIMENT_ASSIGNMENT,
    FEEDBACK,
    METRIC_NAME,
    METRIC_VALUE,
    SCORE,
    UNIT_ID,
)
from victor.errors import ExperimentDataError
from victor.experiments.analysis import Analysis, SRMResult, analyze, srm_check
from victor.experiments.events_reader import ExperimentEvents, read_experiment_events
from victor.experiments.experiment import UNITS, Experiment
from victor.experiments.inference import benjamini_hochberg, holm

__all__ = ["ExperimentReport", "MetricReport", "VariantVerdict", "report"]

# Built-in metrics: name -> (label, kind, higher is better).
LATENCY = "latency_ms"
LATENCY_P95 = "latency_p95_ms"
TOKENS = "tokens"
COST = "cost_usd"
ERRORS = "errors"
TOOL_ERRORS = "tool_errors"
FEEDBACK_METRIC = "feedback"
DEFAULT_GUARDRAILS = (ERRORS, TOOL_ERRORS)
LOWER_IS_BETTER = frozenset({LATENCY, LATENCY_P95, TOKENS, COST, ERRORS, TOOL_ERRORS})
LABELS = {
    LATENCY: "latency",
    LATENCY_P95: "p95 latency",
    TOKENS: "tokens",
    COST: "cost",
    ERRORS: "errors",
    TOOL_ERRORS: "tool errors",
}
SHIP, STOP, KEEP, CHECK_SPLIT, CONTROL = "ship", "stop", "keep running", "check split", "control"
# Corrections across a variant's metrics: Holm (family-wise error) or Benjamini-Hochberg
# (false discovery rate).
HOLM, BH = "holm", "bh"
CORRECTIONS = {HOLM: holm, BH: benjamini_hochberg}


@dataclass(frozen=True, slots=True)
class MetricReport:
    """One metric: each variant's summary and its comparison with the control, with
    the adjusted p-value (``adjusted_p``: Holm or Benjamini-Hochberg across the variant's
    metrics)."""

    name: str
    label: str
    kind: str
    higher_is_better: bool
    guardrail: bool
    analysis: Analysis
    adjusted_p: dict[str, float] = field(default_factory=dict)

    def worse(self, variant: str, alpha: float) -> bool:
        return self._significant(variant, alpha) and not self._better(variant)

    def better(self, variant: str, alpha: float) -> bool:
        return self._significant(variant, alpha) and self._better(variant)

    def _significant(self, variant: str, alpha: float) -> bool:
        return self.adjusted_p.get(variant, math.nan) < alpha

    def _better(self, variant: str) -> bool:
        up = self.analysis.comparisons[variant].absolute > 0
        return up if self.higher_is_better else not up


@dataclass(frozen=True, slots=True)
class VariantVerdict:
    variant: str
    decision: str
    line: str
    guardrails_breached: tuple[str, ...] = ()


@dataclass(slots=True)
class ExperimentReport:
    experiment: str
    control: str
    alpha: float
    units: dict[str, int]
    weights: dict[str, float]
    srm: SRMResult
    primary: str | None
    metrics: list[MetricReport]
    skipped: dict[str, str]  # metric -> why it has no analysis
    verdicts: dict[str, VariantVerdict]
    correction: str = HOLM
    unit: str = "session"  # what ``units`` counts and each metric's sample is

    def metric(self, name: str) -> MetricReport:
        for metric in self.metrics:
            if metric.name == name:
                return metric
        raise KeyError(name)

    def lines(self) -> list[str]:
        """The plain-language verdict of each variant against the control."""
        return [v.line for v in self.verdicts.values()]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: floats, strings, lists and dicts (NaN as None)."""
        return _plain(
            {
                "experiment": self.experiment,
                "control": self.control,
                "alpha": self.alpha,
                "correction": self.correction,
                "unit": self.unit,
                "units": self.units,
                "weights": self.weights,
                "srm": asdict(self.srm),
                "primary": self.primary,
                "metrics": [
                    {
                        "name": m.name,
                        "label": m.label,
                        "kind": m.kind,
                        "higher_is_better": m.higher_is_better,
                        "guardrail": m.guardrail,
                        "variants": {k: asdict(v) for k, v in m.analysis.variants.items()},
                        "comparisons": {
                            k: {**asdict(c), "adjusted_p_value": m.adjusted_p.get(k)}
                            for k, c in m.analysis.comparisons.items()
                        },
                    }
                    for m in self.metrics
                ],
                "skipped": self.skipped,
                "verdicts": {k: asdict(v) for k, v in self.verdicts.items()},
            }
        )


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# -- the analysis ------------------------------------------------------------------------


def _per_variant(rows: Sequence[tuple[str, float]]) -> dict[str, list[float]]:
    values: dict[str, list[float]] = defaultdict(list)
    for variant, value in rows:
        values[variant].append(float(value))
    return values


def _kind(samples: Mapping[str, Sequence[float]]) -> str:
    every = (v for values in samples.values() for v in values)
    return "proportion" if all(v in (0.0, 1.0) for v in every) else "mean"


def _fields(raw: Any) -> dict[str, Any]:
    return json.loads(raw) if isinstance(raw, str) else dict(raw or {})


def _unit_of(data: ExperimentEvents, unit: str) -> dict[str, str]:
    """Session id -> the id of its unit (sessions without a known unit left out)."""
    if unit == "tenant":
        return {s[0]: s[10] for s in data.sessions if s[10] is not None}
    if unit == "user":
        return {
            session_id: str(_fields(raw)[UNIT_ID])
            for session_id, _, kind, raw in data.outcomes
            if kind == EXPERIMENT_ASSIGNMENT and _fields(raw).get(UNIT_ID) is not None
        }
    return {s[0]: s[0] for s in data.sessions}


def _per_unit(data: ExperimentEvents, unit_of: Mapping[str, str]) -> list[tuple[Any, ...]]:
    """The sessions' rows added up per (unit, variant): (unit, variant, turns, mean
    latency, tokens, cost, errors, tool calls, tool errors)."""
    sums: dict[tuple[str, str], list[Any]] = {}
    for s in data.sessions:
        if s[0] not in unit_of:
            continue
        row = sums.setdefault((unit_of[s[0]], s[1]), [0, 0.0, 0, None, 0, 0, 0, 0])
        turns, latency, tokens, cost, errors, calls, tool_errors, timed = s[2:10]
        row[0] += turns or 0
        row[1] += latency or 0.0
        row[2] += tokens or 0
        row[3] = cost if row[3] is None else row[3] + (cost or 0.0)
        row[4] += errors or 0
        row[5] += calls or 0
        row[6] += tool_errors or 0
        row[7] += timed or 0
    return [
        (unit, variant, r[0], r[1] / r[7] if r[7] else None, *r[2:7])
        for (unit, variant), r in sums.items()
    ]


def _samples(
    data: ExperimentEvents, units: Sequence[tuple[Any, ...]], unit_of: Mapping[str, str]
) -> dict[str, dict[str, Any]]:
    """Metric name -> analyze() arguments (samples, kind and, for ratios, denominators)."""
    sessions = units
    metrics: dict[str, dict[str, Any]] = {
        LATENCY: {"samples": _per_variant([(s[1], s[3]) for s in sessions if s[3] is not None])},
        LATENCY_P95: {"samples": _per_variant(data.turns), "kind": "quantile", "quantile": 0.95},
        TOKENS: {"samples": _per_variant([(s[1], s[4] or 0) for s in sessions])},
        COST: {"samples": _per_variant([(s[1], s[5]) for s in sessions if s[5] is not None])},
    }
    attempts = [s for s in sessions if (s[2] or 0) + (s[6] or 0)]
    metrics[ERRORS] = {
        "samples": _per_variant([(s[1], s[6] or 0) for s in attempts]),
        "denominators": _per_variant([(s[1], (s[2] or 0) + (s[6] or 0)) for s in attempts]),
        "kind": "ratio",
    }
    metrics[TOOL_ERRORS] = {
        "samples": _per_variant([(s[1], s[8] or 0) for s in sessions]),
        "denominators": _per_variant([(s[1], s[7] or 0) for s in sessions]),
        "kind": "ratio",
    }
    outcomes: dict[str, dict[tuple[str, str], list[float]]] = defaultdict(dict)
    for session_id, variant, kind, raw in data.outcomes:
        if kind == EXPERIMENT_ASSIGNMENT or session_id not in unit_of:
            continue
        fields = _fields(raw)
        if kind == FEEDBACK:
            name, value = FEEDBACK_METRIC, fields.get(SCORE)
        else:
            name, value = str(fields.get(METRIC_NAME)), fields.get(METRIC_VALUE)
        if isinstance(value, int | float) and math.isfinite(value):
            key = (unit_of[session_id], variant)
            outcomes[name].setdefault(key, []).append(float(value))
    for name, per_unit in sorted(outcomes.items()):
        samples = _per_variant([(variant, sum(v) / len(v)) for (_, variant), v in per_unit.items()])
        metrics[name] = {"samples": samples, "kind": _kind(samples)}
    return metrics


def _label(name: str, kind: str) -> str:
    if name == FEEDBACK_METRIC:
        return "good answers" if kind == "proportion" else "feedback score"
    return LABELS.get(name, name)


async def report(
    experiment: str | Experiment,
    store: str | Path | None = None,
    *,
    control: str | None = None,
    weights: Mapping[str, float] | None = None,
    primary: str | None = None,
    guardrails: Sequence[str] | None = None,
    alpha: float = 0.05,
    correction: str = HOLM,
    unit: str | None = None,
) -> ExperimentReport:
    """The report of ``experiment`` (an :class:`Experiment`, or its name: then the
    variants are those seen, equally weighted, the control ``"control"`` or else the
    first in name order) from the analytics store ``store`` (a SQLite file, ``sqlite:///path``
    or ``postgresql://...``; default ``analytics.db`` in the data directory).

    ``primary``: the metric that decides (default the experiment's primary metric, else
    ``feedback``, else the only custom metric); ``guardrails``: metrics that stop a
    variant when significantly worse (default the experiment's, with errors and tool
    errors); ``correction``: ``"holm"`` (the default) or ``"bh"`` (Benjamini-Hochberg),
    across each variant's metrics; ``unit``: what a sample is, ``"session"``, ``"user"``
    or ``"tenant"`` (default the experiment's unit, else the session)."""
    if correction not in CORRECTIONS:
        raise ValueError(
            f"report: correction {correction!r} unknown; accepted: {', '.join(CORRECTIONS)}"
        )
    name = experiment.name if isinstance(experiment, Experiment) else experiment
    unit = unit or (experiment.unit if isinstance(experiment, Experiment) else "session")
    if unit not in UNITS:
        raise ValueError(f"report: unit {unit!r} unknown; accepted: {', '.join(UNITS)}")
    data = await read_experiment_events(store, name)
    unit_of = _unit_of(data, unit)
    rows = _per_unit(data, unit_of)
    if not data.sessions:
        raise ExperimentDataError(f"no events of experiment {name!r} in the analytics store")
    if not rows:
        raise ExperimentDataError(
            f"experiment {name!r}: no session in the analytics store names its {unit} "
            f"(the {UNIT_ID} of its {EXPERIMENT_ASSIGNMENT} event)"
        )
    units: dict[str, int] = defaultdict(int)
    for row in rows:
        units[row[1]] += 1
    if isinstance(experiment, Experiment):
        control = control or experiment.control
        weights = weights or experiment.weights
        primary = primary or experiment.primary_metric
        if guardrails is None:
            guardrails = (*DEFAULT_GUARDRAILS, *experiment.guardrail_metrics)
    seen = sorted(units)
    weights = dict(weights) if weights else {v: 1.0 / len(seen) for v in seen}
    unknown = [v for v in seen if v not in weights]
    if unknown:
        raise ExperimentDataError(
            f"experiment {name!r}: the store has variant(s) {', '.join(unknown)} that the "
            f"weights do not name ({', '.join(weights)})"
        )
    units = {v: units.get(v, 0) for v in weights}
    control = control or ("control" if "control" in weights else seen[0])
    if control not in weights:
        raise ExperimentDataError(
            f"experiment {name!r}: control {control!r} is not a variant; "
            f"variants: {', '.join(weights)}"
        )
    guardrails = tuple(DEFAULT_GUARDRAILS if guardrails is None else guardrails)
    srm = srm_check(units, weights)

    metrics: list[MetricReport] = []
    skipped: dict[str, str] = {}
    for metric, arguments in _samples(data, rows, unit_of).items():
        kind = arguments.pop("kind", "mean")
        try:
            analysis = analyze(arguments.pop("samples"), control, kind, alpha, **arguments)
        except ExperimentDataError as exc:
            skipped[metric] = str(exc)
            continue
        metrics.append(
            MetricReport(
                metric,
                _label(metric, kind),
                kind,
                metric not in LOWER_IS_BETTER,
                metric in guardrails,
                analysis,
            )
        )
    for variant in weights:
        family = {
            m.name: m.analysis.comparisons[variant].p_value
            for m in metrics
            # A metric without variance (a constant) has no test: left out of the family.
            if variant in m.analysis.comparisons
            and math.isfinite(m.analysis.comparisons[variant].p_value)
        }
        for metric_name, p in CORRECTIONS[correction](family).items():
            next(m for m in metrics if m.name == metric_name).adjusted_p[variant] = p
    if primary is None:
        custom = [m.name for m in metrics if m.name not in LOWER_IS_BETTER]
        primary = FEEDBACK_METRIC if FEEDBACK_METRIC in custom else None
        primary = primary or (custom[0] if len(custom) == 1 else None)
    result = ExperimentReport(
        name, control, alpha, units, weights, srm, primary, metrics, skipped, {}, correction, unit
    )
    result.verdicts = {v: _verdict(result, v) for v in weights if v != control}
    return result


def _percent(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value * 100:+.1f}%"


def _verdict(result: ExperimentReport, variant: str) -> VariantVerdict:
    alpha = result.alpha
    compared = [m for m in result.metrics if variant in m.analysis.comparisons]
    breached = tuple(m.name for m in compared if m.guardrail and m.worse(variant, alpha))
    primary = next((m for m in compared if m.name == result.primary), None)
    parts = []
    if primary is not None:
        c = primary.analysis.comparisons[variant]
        low, high = c.relative_ci
        parts.append(
            f"{_percent(c.relative)} {primary.label} (95% CI {_percent(low)[:-1]}.."
            f"{_percent(high)}, p={primary.adjusted_p.get(variant, math.nan):.3f})"
        )
    cost = next((m for m in compared if m.name == COST), None)
    if cost is not None:
        parts.append(f"cost {_percent(cost.analysis.comparisons[variant].relative)}")
    for name in breached:
        m = next(m for m in compared if m.name == name)
        c = m.analysis.comparisons[variant]
        parts.append(f"guardrail {m.label} {_percent(c.relative)} (p={m.adjusted_p[variant]:.3f})")
    if breached:
        decision = STOP
    elif result.srm.flagged:
        decision = CHECK_SPLIT
    elif primary is not None and primary.better(variant, alpha):
        decision = SHIP
    elif primary is not None and primary.worse(variant, alpha):
        decision = STOP
    else:
        decision = KEEP
    srm = f"SRM failed (p={result.srm.p_value:.2g})" if result.srm.flagged else "SRM ok"
    summary = ", ".join(parts) if parts else "no comparable metric"
    return VariantVerdict(variant, decision, f"{variant}: {summary}; {srm} -> {decision}", breached)
