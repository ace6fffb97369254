"""The analysis of experiments, checked against scipy and by simulation.

Simulations run 1,000 experiments at once on numpy arrays through the same vectorised
tests that ``analyze`` calls, so they take a second or two.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from victor.errors import ExperimentDataError
from victor.experiments import (
    Experiment,
    analyze,
    benjamini_hochberg,
    holm,
    sample_size,
    srm_check,
)
from victor.experiments.inference import confidence_sequence, two_proportions, welch

SIMULATIONS = 1_000


def test_means_agree_with_scipys_welch_t_test():
    rng = np.random.default_rng(11)
    control, variant = rng.normal(10, 2, 800), rng.normal(10.4, 3.5, 650)
    result = analyze({"control": control, "variant": variant}, control="control")
    comparison = result.comparisons["variant"]
    reference = stats.ttest_ind(variant, control, equal_var=False)
    assert comparison.p_value == pytest.approx(reference.pvalue, abs=1e-9, rel=1e-9)
    interval = reference.confidence_interval(0.95)
    assert comparison.absolute_ci == pytest.approx((interval.low, interval.high), abs=1e-9)
    assert comparison.absolute == pytest.approx(variant.mean() - control.mean(), abs=1e-12)
    summary = result.variants["variant"]
    low, high = stats.t.interval(0.95, 649, variant.mean(), stats.sem(variant))
    assert (summary.n, summary.ci_low, summary.ci_high) == (
        650,
        pytest.approx(low),
        pytest.approx(high),
    )
    assert comparison.probability_to_beat > 0.95 and comparison.significant


def test_proportions_agree_with_scipys_chi_square_test_of_the_two_by_two_table():
    rng = np.random.default_rng(12)
    control, variant = rng.binomial(1, 0.30, 1200), rng.binomial(1, 0.34, 1100)
    comparison = analyze({"c": control, "v": variant}, "c", kind="proportion").comparisons["v"]
    table = [
        [variant.sum(), variant.size - variant.sum()],
        [control.sum(), control.size - control.sum()],
    ]
    reference = stats.chi2_contingency(table, correction=False)
    assert comparison.p_value == pytest.approx(reference.pvalue, abs=1e-9, rel=1e-9)
    assert comparison.absolute == pytest.approx(variant.mean() - control.mean(), abs=1e-12)
    assert comparison.relative == pytest.approx(variant.mean() / control.mean() - 1, abs=1e-12)


def _summaries(data):
    """Mean, sample variance and n along the last axis."""
    return data.mean(axis=-1), data.var(axis=-1, ddof=1), data.shape[-1]


def test_aa_experiments_give_false_positives_at_alpha():
    rng = np.random.default_rng(21)
    data = rng.normal(5.0, 2.0, size=(SIMULATIONS, 2, 500))
    mean_t, var_t, n = _summaries(data[:, 0])
    mean_c, var_c, _ = _summaries(data[:, 1])
    p = welch(mean_t, var_t, n, mean_c, var_c, n).p_value
    assert 0.04 <= (p < 0.05).mean() <= 0.06
    rates = rng.binomial(1, 0.2, size=(SIMULATIONS, 2, 500)).sum(axis=-1)
    p = two_proportions(rates[:, 0], 500, rates[:, 1], 500).p_value
    assert 0.04 <= (p < 0.05).mean() <= 0.06
    # The same through analyze, for a few of them.
    for k in range(5):
        result = analyze({"c": data[k, 1], "t": data[k, 0]}, "c")
        assert result.comparisons["t"].p_value == pytest.approx(
            welch(mean_t[k], var_t[k], 500, mean_c[k], var_c[k], 500).p_value, abs=1e-12
        )


def test_ten_interim_looks_inflate_false_positives_unless_the_p_value_is_sequential():
    rng = np.random.default_rng(22)
    per_look, looks = 200, 10
    data = rng.normal(0.0, 1.0, size=(SIMULATIONS, 2, per_look * looks))
    sums = data.cumsum(axis=-1)[..., per_look - 1 :: per_look]
    squares = (data**2).cumsum(axis=-1)[..., per_look - 1 :: per_look]
    n = per_look * np.arange(1, looks + 1)
    means = sums / n
    variances = (squares - n * means**2) / (n - 1)
    classic = welch(means[:, 0], variances[:, 0], n, means[:, 1], variances[:, 1], n)
    peeking = (classic.p_value < 0.05).any(axis=1).mean()
    assert peeking > 0.12  # stopping at the first p < 0.05 of ten looks: about 19%
    sequential_p, low, high = confidence_sequence(classic.difference, classic.standard_error, 2 * n)
    assert (sequential_p < 0.05).any(axis=1).mean() <= 0.06
    assert ((low > 0) | (high < 0)).any(axis=1).mean() <= 0.06
    # analyze gives the same sequential p-value at a look.
    result = analyze({"c": data[0, 1, :600], "t": data[0, 0, :600]}, "c", sequential=True)
    assert result.comparisons["t"].sequential_p_value == pytest.approx(float(sequential_p[0, 2]))


def test_a_true_ten_percent_lift_is_detected_at_the_planned_power():
    baseline, sd = 10.0, 5.0
    n = sample_size(baseline, 0.10, sd=sd, power=0.8)
    assert n == math.ceil(2 * (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) ** 2 * 25 / 1.0)
    rng = np.random.default_rng(23)
    treated = rng.normal(baseline * 1.1, sd, size=(SIMULATIONS, n))
    control = rng.normal(baseline, sd, size=(SIMULATIONS, n))
    p = welch(*_summaries(treated), *_summaries(control)).p_value
    assert abs((p < 0.05).mean() - 0.8) <= 0.03

    rate_n = sample_size(0.2, 0.10, kind="proportion", power=0.8)
    wins_t = rng.binomial(rate_n, 0.22, SIMULATIONS)
    wins_c = rng.binomial(rate_n, 0.20, SIMULATIONS)
    p = two_proportions(wins_t, rate_n, wins_c, rate_n).p_value
    assert abs((p < 0.05).mean() - 0.8) <= 0.03


def test_srm_flags_a_broken_split_and_passes_a_healthy_one():
    weights = {"control": 0.5, "variant": 0.5}
    experiment = Experiment("srm", {"control": {}, "variant": {}}, weights)
    healthy = {"control": 0, "variant": 0}
    for i in range(20_000):
        healthy[experiment.assign(f"u{i}")] += 1
    assert not srm_check(healthy, weights).flagged
    # The variant crashes for 5% of its units before they are logged.
    broken = {"control": healthy["control"], "variant": int(healthy["variant"] * 0.95)}
    result = srm_check(broken, weights)
    assert result.flagged and result.p_value < 0.001
    reference = stats.chisquare(list(broken.values()), [sum(broken.values()) / 2] * 2)
    assert result.statistic == pytest.approx(reference.statistic)


def test_cuped_narrows_the_interval_when_the_covariate_correlates():
    rng = np.random.default_rng(24)
    before = {v: rng.normal(100, 20, 2000) for v in ("c", "t")}
    after = {
        "c": before["c"] + rng.normal(0, 5, 2000),
        "t": before["t"] + 1.0 + rng.normal(0, 5, 2000),
    }
    plain = analyze(after, "c").comparisons["t"]
    cuped = analyze(after, "c", covariates=before)
    adjusted = cuped.comparisons["t"]
    width = lambda c: c.absolute_ci[1] - c.absolute_ci[0]  # noqa: E731
    assert width(adjusted) < width(plain) / 3
    assert cuped.cuped_theta == pytest.approx(1.0, abs=0.05)
    assert adjusted.absolute_ci[0] < 1.0 < adjusted.absolute_ci[1] and adjusted.p_value < 1e-6


def test_ratio_metric_by_the_delta_method():
    rng = np.random.default_rng(25)
    sessions = {v: rng.integers(1, 5, 3000).astype(float) for v in ("c", "t")}
    cost = {"c": sessions["c"] * rng.normal(0.010, 0.002, 3000)}
    cost["t"] = sessions["t"] * rng.normal(0.011, 0.002, 3000)
    result = analyze(cost, "c", kind="ratio", denominators=sessions)
    assert result.variants["c"].mean == pytest.approx(cost["c"].sum() / sessions["c"].sum())
    assert result.comparisons["t"].relative == pytest.approx(0.1, abs=0.02)
    assert result.comparisons["t"].p_value < 1e-6
    # Bootstrap check of the delta method's standard error of the control's ratio.
    picks = rng.integers(0, 3000, size=(400, 3000))
    boot = cost["c"][picks].sum(axis=1) / sessions["c"][picks].sum(axis=1)
    summary = result.variants["c"]
    delta_se = (summary.ci_high - summary.ci_low) / (2 * stats.norm.ppf(0.975))
    assert delta_se == pytest.approx(boot.std(), rel=0.15)


def test_quantile_metric_p95():
    rng = np.random.default_rng(26)
    latency = {"c": rng.lognormal(6.0, 0.5, 5000), "t": rng.lognormal(5.9, 0.5, 5000)}
    result = analyze(latency, "c", kind="quantile", quantile=0.95)
    summary = result.variants["c"]
    assert summary.mean == pytest.approx(np.quantile(latency["c"], 0.95))
    assert summary.ci_low < math.exp(6.0 + 0.5 * stats.norm.ppf(0.95)) < summary.ci_high
    assert result.comparisons["t"].absolute < 0 and result.comparisons["t"].p_value < 0.01


def test_holm_adjusts_p_values_across_metrics():
    adjusted = holm({"quality": 0.01, "cost": 0.04, "latency": 0.03})
    assert adjusted == pytest.approx({"quality": 0.03, "cost": 0.06, "latency": 0.06})


def test_benjamini_hochberg_agrees_with_scipy():
    rng = np.random.default_rng(11)
    for size in (1, 2, 5, 40):
        p = np.concatenate([rng.uniform(0, 1, size), rng.uniform(0, 0.01, size)])
        p[::3] = p[0]  # ties
        named = {f"m{i}": float(v) for i, v in enumerate(p)}
        adjusted = benjamini_hochberg(named)
        expected = stats.false_discovery_control(p, method="bh")
        assert list(adjusted) == list(named)
        np.testing.assert_allclose(list(adjusted.values()), expected, rtol=0, atol=1e-12)
    assert benjamini_hochberg({}) == {}


@pytest.mark.parametrize(
    ("samples", "kwargs", "message"),
    [
        ({"c": [1.0, 2.0], "t": []}, {}, "variant 't' has 0 unit"),
        ({"c": [1.0, 2.0], "t": [1.0, 3.0]}, {"control": "x"}, "control 'x' is not a variant"),
        ({"c": [0, 1, 2], "t": [0, 1]}, {"kind": "proportion"}, "takes 0 or 1 per unit"),
        ({"c": [1.0, float("nan")], "t": [1.0, 2.0]}, {}, "NaN or infinity"),
        ({"c": [1.0, 2.0], "t": [1.0, 2.0]}, {"kind": "median"}, "kind 'median' unknown"),
        ({"c": [1.0, 2.0], "t": [1.0, 2.0]}, {"kind": "ratio"}, "needs denominators"),
    ],
)
def test_bad_input_is_a_clear_error(samples, kwargs, message):
    kwargs.setdefault("control", "c")
    with pytest.raises(ExperimentDataError, match=message):
        analyze(samples, **kwargs)


def test_srm_check_rejects_mismatched_names():
    with pytest.raises(ExperimentDataError, match="counts name"):
        srm_check({"a": 10, "b": 10}, {"a": 0.5, "c": 0.5})
