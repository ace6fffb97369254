"""The statistical tests behind :func:`~victor.experiments.analyze`, on summary statistics.

Every function takes means, variances and counts, as floats or numpy arrays of the same
shape, so one call tests many experiments at once (simulations, the report's metrics).
Distributions come from scipy; numpy and scipy are imported on first use.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

__all__ = [
    "Estimate",
    "benjamini_hochberg",
    "confidence_sequence",
    "holm",
    "probability_to_beat",
    "sample_size",
    "two_proportions",
    "welch",
]

# The planned sample size the confidence sequence is tightest at (GrowthBook's default).
DEFAULT_PLANNED_N = 5_000


class Estimate(NamedTuple):
    """Treatment minus control: the difference, its standard error, the p-value and the
    ``1 - alpha`` confidence interval."""

    difference: Any
    standard_error: Any
    p_value: Any
    ci_low: Any
    ci_high: Any


def welch(
    mean_t: Any, var_t: Any, n_t: Any, mean_c: Any, var_c: Any, n_c: Any, alpha: float = 0.05
) -> Estimate:
    """Welch's t-test (unequal variances) of the difference of two means; ``var_*`` are
    sample variances (``ddof=1``). Same statistic and p-value as
    ``scipy.stats.ttest_ind(equal_var=False)``."""
    import numpy as np
    from scipy import stats

    a = np.asarray(var_t, dtype=float) / n_t
    b = np.asarray(var_c, dtype=float) / n_c
    difference = np.asarray(mean_t, dtype=float) - mean_c
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(a + b)
        df = (a + b) ** 2 / (a**2 / (np.asarray(n_t) - 1) + b**2 / (np.asarray(n_c) - 1))
        t = difference / se
    p = 2.0 * stats.t.sf(np.abs(t), df)
    half = stats.t.ppf(1.0 - alpha / 2.0, df) * se
    return Estimate(difference, se, p, difference - half, difference + half)


def two_proportions(
    successes_t: Any, n_t: Any, successes_c: Any, n_c: Any, alpha: float = 0.05
) -> Estimate:
    """The two-proportion z-test (pooled standard error for the p-value, as the
    chi-square test of the 2x2 table without continuity correction) with the unpooled
    (Wald) interval of the difference."""
    import numpy as np
    from scipy import stats

    n_t = np.asarray(n_t, dtype=float)
    n_c = np.asarray(n_c, dtype=float)
    p_t = np.asarray(successes_t, dtype=float) / n_t
    p_c = np.asarray(successes_c, dtype=float) / n_c
    pooled = (np.asarray(successes_t) + np.asarray(successes_c)) / (n_t + n_c)
    difference = p_t - p_c
    with np.errstate(divide="ignore", invalid="ignore"):
        z = difference / np.sqrt(pooled * (1.0 - pooled) * (1.0 / n_t + 1.0 / n_c))
    p = np.where(np.isnan(z), 1.0, 2.0 * stats.norm.sf(np.abs(np.nan_to_num(z))))
    se = np.sqrt(p_t * (1.0 - p_t) / n_t + p_c * (1.0 - p_c) / n_c)
    half = stats.norm.ppf(1.0 - alpha / 2.0) * se
    return Estimate(difference, se, p, difference - half, difference + half)


def probability_to_beat(difference: Any, standard_error: Any) -> Any:
    """Posterior probability that the treatment's mean is above the control's, with a
    flat prior and the normal approximation of the difference's posterior."""
    import numpy as np
    from scipy import stats

    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.asarray(difference, dtype=float) / standard_error
    return np.where(np.isnan(z), 0.5, stats.norm.cdf(np.nan_to_num(z)))


def confidence_sequence(
    difference: Any,
    standard_error: Any,
    n_total: Any,
    alpha: float = 0.05,
    planned_n: int = DEFAULT_PLANNED_N,
) -> tuple[Any, Any, Any]:
    """The always-valid p-value and ``1 - alpha`` confidence sequence of a difference:
    the asymptotic confidence sequence of Waudby-Smith et al. (2023), as GrowthBook's
    sequential testing. Looking at the results any number of times keeps the chance of
    a false positive at ``alpha``. Returns ``(p_value, ci_low, ci_high)``.

    ``n_total`` is the units of both arms; ``planned_n`` the total where the sequence is
    tightest (it stays valid at any size)."""
    import numpy as np

    n = np.asarray(n_total, dtype=float)
    sigma2 = np.asarray(standard_error, dtype=float) ** 2 * n  # the per-unit variance
    rho2 = (-2.0 * math.log(alpha) + math.log(-2.0 * math.log(alpha) + 1.0)) / planned_n
    spread = n * rho2 + 1.0
    half = np.sqrt(sigma2 * 2.0 * spread / (n**2 * rho2) * np.log(np.sqrt(spread) / alpha))
    difference = np.asarray(difference, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        exponent = -(difference**2) * n**2 * rho2 / (2.0 * sigma2 * spread)
    p = np.minimum(1.0, np.sqrt(spread) * np.exp(np.nan_to_num(exponent, nan=0.0)))
    return p, difference - half, difference + half


def holm(p_values: dict[str, float]) -> dict[str, float]:
    """Holm-Bonferroni adjusted p-values (family-wise error across metrics)."""
    ordered = sorted(p_values.items(), key=lambda item: item[1])
    m = len(ordered)
    adjusted: dict[str, float] = {}
    running = 0.0
    for rank, (name, p) in enumerate(ordered):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[name] = running
    return {name: adjusted[name] for name in p_values}


def benjamini_hochberg(p_values: dict[str, float]) -> dict[str, float]:
    """Benjamini-Hochberg adjusted p-values (false discovery rate across metrics)."""
    ordered = sorted(p_values.items(), key=lambda item: item[1], reverse=True)
    m = len(ordered)
    adjusted: dict[str, float] = {}
    running = 1.0
    for rank, (name, p) in enumerate(ordered):  # from the largest p down
        running = min(running, m / (m - rank) * p)
        adjusted[name] = running
    return {name: adjusted[name] for name in p_values}


def sample_size(
    baseline: float,
    relative_lift: float,
    *,
    kind: str = "mean",
    sd: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
) -> int:
    """Units per arm for a two-sided test at ``alpha`` to detect ``relative_lift`` over
    ``baseline`` with probability ``power`` (the mean's ``sd`` is needed for means)."""
    from scipy import stats

    if relative_lift == 0:
        raise ValueError("sample_size: relative_lift must not be 0")
    delta = baseline * relative_lift
    z_alpha = stats.norm.ppf(1.0 - alpha / 2.0)
    z_power = stats.norm.ppf(power)
    if kind == "proportion":
        treated = baseline + delta
        if not (0.0 < baseline < 1.0 and 0.0 < treated < 1.0):
            raise ValueError("sample_size: proportions must stay within (0, 1)")
        mean = (baseline + treated) / 2.0
        n = (
            z_alpha * math.sqrt(2.0 * mean * (1.0 - mean))
            + z_power * math.sqrt(baseline * (1.0 - baseline) + treated * (1.0 - treated))
        ) ** 2 / delta**2
    elif kind == "mean":
        if sd is None or sd <= 0:
            raise ValueError("sample_size: a mean metric needs its standard deviation, sd > 0")
        n = 2.0 * (z_alpha + z_power) ** 2 * sd**2 / delta**2
    else:
        raise ValueError(f"sample_size: kind {kind!r} unknown; accepted: mean, proportion")
    return math.ceil(n)
