"""The analysis of an experiment's metric: each variant against the control.

```python
from victor.experiments import analyze, srm_check

result = analyze({"control": latencies_a, "fast": latencies_b}, control="control")
result.comparisons["fast"].p_value
srm_check({"control": 5_020, "fast": 4_980}, {"control": 0.5, "fast": 0.5}).flagged
```

Metric kinds: ``mean`` (Welch's t-test), ``proportion`` (0/1 values, the two-proportion
z-test), ``ratio`` (sum of ``samples`` over sum of ``denominators`` per unit, e.g. cost per
successful session, by the delta method) and ``quantile`` (``quantile=0.95`` for p95; its
interval from order statistics). ``covariates`` (the same units' pre-period values) turn
on CUPED: the metric less ``theta`` times the covariate's deviation, which keeps the
difference unbiased and narrows its interval as much as the two correlate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from victor.errors import ExperimentDataError
from victor.experiments.inference import (
    DEFAULT_PLANNED_N,
    Estimate,
    confidence_sequence,
    probability_to_beat,
    two_proportions,
    welch,
)

__all__ = ["Analysis", "Comparison", "SRMResult", "VariantSummary", "analyze", "srm_check"]

Kind = Literal["mean", "proportion", "ratio", "quantile"]
KINDS = ("mean", "proportion", "ratio", "quantile")
SRM_THRESHOLD = 0.001


@dataclass(frozen=True, slots=True)
class VariantSummary:
    """One variant's units, its metric (mean, rate, ratio or quantile) and interval."""

    name: str
    n: int
    mean: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True, slots=True)
class Comparison:
    """A variant against the control: ``absolute`` = variant - control, ``relative`` =
    absolute / control, each with its ``1 - alpha`` interval; ``probability_to_beat``
    is the posterior probability that the variant's value is the higher one."""

    variant: str
    control: str
    absolute: float
    absolute_ci: tuple[float, float]
    relative: float
    relative_ci: tuple[float, float]
    p_value: float
    probability_to_beat: float
    significant: bool
    sequential_p_value: float | None = None
    confidence_sequence: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class Analysis:
    kind: str
    alpha: float
    control: str
    variants: dict[str, VariantSummary]
    comparisons: dict[str, Comparison]
    cuped_theta: float | None = None


@dataclass(frozen=True, slots=True)
class SRMResult:
    """The sample-ratio-mismatch chi-square test; ``flagged`` when ``p_value`` < 0.001:
    the split is not what the weights say, and the results are not to be trusted."""

    statistic: float
    p_value: float
    flagged: bool


def _array(name: str, values: Any, what: str = "samples") -> Any:
    import numpy as np

    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ExperimentDataError(f"{what} of variant {name!r} must be numbers") from None
    if array.ndim != 1:
        raise ExperimentDataError(f"{what} of variant {name!r} must be a flat sequence")
    if not np.isfinite(array).all():
        raise ExperimentDataError(f"{what} of variant {name!r} contain NaN or infinity")
    return array


def _stats(values: Any) -> tuple[int, float, float]:
    """n, mean and sample variance (ddof=1)."""
    n = int(values.size)
    mean = float(values.mean())
    return n, mean, float(((values - mean) ** 2).sum() / (n - 1))


def _relative(
    estimate: Estimate, mean_t: float, var_mean_t: float, mean_c: float, var_mean_c: float, z: float
) -> tuple[float, tuple[float, float]]:
    """Relative lift (t / c - 1) and its interval by the delta method."""
    if mean_c == 0:
        return math.nan, (math.nan, math.nan)
    relative = mean_t / mean_c - 1.0
    se = math.sqrt(var_mean_t / mean_c**2 + mean_t**2 * var_mean_c / mean_c**4)
    return relative, (relative - z * se, relative + z * se)


def analyze(
    samples: Mapping[str, Sequence[float] | Any],
    control: str,
    kind: Kind = "mean",
    alpha: float = 0.05,
    *,
    covariates: Mapping[str, Sequence[float] | Any] | None = None,
    denominators: Mapping[str, Sequence[float] | Any] | None = None,
    quantile: float = 0.5,
    sequential: bool = False,
    planned_n: int = DEFAULT_PLANNED_N,
) -> Analysis:
    """Per variant n, value and ``1 - alpha`` interval; each variant against ``control``
    (see :class:`Comparison`). ``sequential=True`` adds the always-valid p-value and
    confidence sequence, safe to look at after every new unit (``planned_n``: the total
    units where the sequence is tightest)."""
    import numpy as np
    from scipy import stats

    if kind not in KINDS:
        raise ExperimentDataError(f"analyze: kind {kind!r} unknown; accepted: {', '.join(KINDS)}")
    if not 0.0 < alpha < 1.0:
        raise ExperimentDataError(f"analyze: alpha must be in (0, 1) (got {alpha})")
    if control not in samples:
        raise ExperimentDataError(
            f"analyze: control {control!r} is not a variant; variants: {', '.join(samples)}"
        )
    if len(samples) < 2:
        raise ExperimentDataError("analyze: needs the control and at least one variant")
    arrays = {name: _array(name, values) for name, values in samples.items()}
    for name, values in arrays.items():
        if values.size < 2:
            raise ExperimentDataError(
                f"analyze: variant {name!r} has {values.size} unit(s) of data; needs at least 2"
            )
    if kind == "proportion" and covariates is None:
        for name, values in arrays.items():
            if not np.isin(values, (0.0, 1.0)).all():
                raise ExperimentDataError(
                    f"analyze: a proportion metric takes 0 or 1 per unit; variant {name!r} "
                    "has other values"
                )
    z = float(stats.norm.ppf(1.0 - alpha / 2.0))

    theta = None
    if covariates is not None:
        arrays, theta = _cuped(arrays, covariates)
    if kind == "ratio":
        summaries, variances = _ratio(arrays, denominators, z)
    elif kind == "quantile":
        summaries, variances = _quantile(arrays, quantile, alpha, z)
    else:
        summaries, variances = {}, {}
        for name, values in arrays.items():
            n, mean, var = _stats(values)
            if kind == "proportion" and covariates is None:
                half = z * math.sqrt(mean * (1.0 - mean) / n)
            else:
                half = float(stats.t.ppf(1.0 - alpha / 2.0, n - 1)) * math.sqrt(var / n)
            summaries[name] = VariantSummary(name, n, mean, mean - half, mean + half)
            variances[name] = var

    base = summaries[control]
    comparisons = {}
    for name, summary in summaries.items():
        if name == control:
            continue
        if kind == "mean" or (kind == "proportion" and covariates is not None):
            estimate = welch(
                summary.mean,
                variances[name],
                summary.n,
                base.mean,
                variances[control],
                base.n,
                alpha,
            )
            var_t, var_c = variances[name] / summary.n, variances[control] / base.n
        elif kind == "proportion":
            estimate = two_proportions(
                round(summary.mean * summary.n),
                summary.n,
                round(base.mean * base.n),
                base.n,
                alpha,
            )
            var_t = summary.mean * (1.0 - summary.mean) / summary.n
            var_c = base.mean * (1.0 - base.mean) / base.n
        else:  # ratio and quantile: variances[] already hold the estimate's variance
            var_t, var_c = variances[name], variances[control]
            difference = summary.mean - base.mean
            se = math.sqrt(var_t + var_c)
            p = float(2.0 * stats.norm.sf(abs(difference) / se)) if se > 0 else 1.0
            estimate = Estimate(difference, se, p, difference - z * se, difference + z * se)
        relative, relative_ci = _relative(estimate, summary.mean, var_t, base.mean, var_c, z)
        p_value = float(estimate.p_value)
        sequential_p = sequence = None
        if sequential:
            seq_p, low, high = confidence_sequence(
                estimate.difference,
                estimate.standard_error,
                summary.n + base.n,
                alpha,
                planned_n,
            )
            sequential_p, sequence = float(seq_p), (float(low), float(high))
        comparisons[name] = Comparison(
            variant=name,
            control=control,
            absolute=float(estimate.difference),
            absolute_ci=(float(estimate.ci_low), float(estimate.ci_high)),
            relative=relative,
            relative_ci=relative_ci,
            p_value=p_value,
            probability_to_beat=float(
                probability_to_beat(estimate.difference, estimate.standard_error)
            ),
            significant=(sequential_p if sequential_p is not None else p_value) < alpha,
            sequential_p_value=sequential_p,
            confidence_sequence=sequence,
        )
    return Analysis(kind, alpha, control, summaries, comparisons, theta)


def _cuped(arrays: dict[str, Any], covariates: Mapping[str, Any]) -> tuple[dict[str, Any], float]:
    """The metric less theta * (covariate - its mean), theta pooled over all variants."""
    import numpy as np

    xs = {}
    for name, values in arrays.items():
        if name not in covariates:
            raise ExperimentDataError(f"analyze: no covariates for variant {name!r}")
        x = _array(name, covariates[name], "covariates")
        if x.size != values.size:
            raise ExperimentDataError(
                f"analyze: variant {name!r} has {values.size} samples but {x.size} covariates"
            )
        xs[name] = x
    y_all = np.concatenate(list(arrays.values()))
    x_all = np.concatenate(list(xs.values()))
    x_mean = x_all.mean()
    x_var = float(((x_all - x_mean) ** 2).sum())
    theta = float(((x_all - x_mean) * (y_all - y_all.mean())).sum() / x_var) if x_var else 0.0
    return {name: values - theta * (xs[name] - x_mean) for name, values in arrays.items()}, theta


def _ratio(
    arrays: dict[str, Any], denominators: Mapping[str, Any] | None, z: float
) -> tuple[dict[str, VariantSummary], dict[str, float]]:
    """sum(numerator) / sum(denominator) and its variance by the delta method."""
    if denominators is None:
        raise ExperimentDataError("analyze: a ratio metric needs denominators per variant")
    summaries, variances = {}, {}
    for name, numerator in arrays.items():
        if name not in denominators:
            raise ExperimentDataError(f"analyze: no denominators for variant {name!r}")
        denominator = _array(name, denominators[name], "denominators")
        if denominator.size != numerator.size:
            raise ExperimentDataError(
                f"analyze: variant {name!r} has {numerator.size} numerators but "
                f"{denominator.size} denominators"
            )
        n = numerator.size
        mean_n, mean_d = float(numerator.mean()), float(denominator.mean())
        if mean_d == 0:
            raise ExperimentDataError(f"analyze: denominators of variant {name!r} sum to 0")
        ratio = mean_n / mean_d
        var_n = float(numerator.var(ddof=1))
        var_d = float(denominator.var(ddof=1))
        cov = float(((numerator - mean_n) * (denominator - mean_d)).sum() / (n - 1))
        variance = (var_n - 2.0 * ratio * cov + ratio**2 * var_d) / (n * mean_d**2)
        half = z * math.sqrt(max(variance, 0.0))
        summaries[name] = VariantSummary(name, n, ratio, ratio - half, ratio + half)
        variances[name] = max(variance, 0.0)
    return summaries, variances


def _quantile(
    arrays: dict[str, Any], q: float, alpha: float, z: float
) -> tuple[dict[str, VariantSummary], dict[str, float]]:
    """The q-quantile; its interval from the order statistics around rank n*q, and the
    variance read back from that interval's width."""
    import numpy as np

    if not 0.0 < q < 1.0:
        raise ExperimentDataError(f"analyze: quantile must be in (0, 1) (got {q})")
    summaries, variances = {}, {}
    for name, values in arrays.items():
        n = values.size
        spread = z * math.sqrt(n * q * (1.0 - q))
        low_rank = max(0, math.floor(n * q - spread))
        high_rank = min(n - 1, math.ceil(n * q + spread))
        ordered = np.partition(values, (low_rank, high_rank))
        estimate = float(np.quantile(values, q))
        low, high = float(ordered[low_rank]), float(ordered[high_rank])
        summaries[name] = VariantSummary(name, n, estimate, low, high)
        variances[name] = ((high - low) / (2.0 * z)) ** 2
    return summaries, variances


def srm_check(counts: Mapping[str, int], weights: Mapping[str, float]) -> SRMResult:
    """Whether the units per variant match the weights (chi-square goodness of fit)."""
    from scipy import stats

    if set(counts) != set(weights):
        raise ExperimentDataError(
            f"srm_check: counts name {sorted(counts)} but weights name {sorted(weights)}"
        )
    if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ExperimentDataError("srm_check: weights must be >= 0 and not all 0")
    if any(c < 0 for c in counts.values()):
        raise ExperimentDataError("srm_check: counts must be >= 0")
    total = sum(counts.values())
    if total == 0:
        raise ExperimentDataError("srm_check: no units counted")
    weight_sum = sum(weights.values())
    names = [name for name in counts if weights[name] > 0]
    observed = [counts[name] for name in names]
    expected = [total * weights[name] / weight_sum for name in names]
    if any(counts[name] for name in counts if weights[name] == 0):
        return SRMResult(math.inf, 0.0, True)  # units in a variant that should have none
    if len(names) < 2:
        return SRMResult(0.0, 1.0, False)
    statistic, p_value = stats.chisquare(observed, expected)
    return SRMResult(float(statistic), float(p_value), float(p_value) < SRM_THRESHOLD)
