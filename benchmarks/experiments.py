"""How fast experiments assign units and analyse results, beside GrowthBook's Python SDK.

1. ``Experiment.assign`` on one core, in-process: 1,000,000 distinct unit ids back to
   back (throughput), then 200,000 calls timed one by one with ``perf_counter_ns`` (p50,
   p99; the timer's own cost, measured on an empty call, is included and reported).
   Three variants, weights 0.5 / 0.25 / 0.25.
2. GrowthBook's ``eval_feature`` (when ``growthbook`` is importable) in the same run: a
   feature whose one rule is an experiment with the same three variations and weights,
   evaluated for distinct ``id`` attributes (``set_attributes`` then ``eval_feature``).
3. ``analyze`` on 1,000,000 units (500,000 a variant, numpy arrays): a mean metric, a
   proportion, the mean with the sequential test, with CUPED; the median of 5 runs.

    python benchmarks/experiments.py [--units 1000000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np

from victor.experiments import Experiment, analyze

VARIANTS = {"control": {"temperature": 0.7}, "a": {"temperature": 0.5}, "b": {"temperature": 0.9}}
WEIGHTS = {"control": 0.5, "a": 0.25, "b": 0.25}


def per_call(function, units: list[str]) -> dict[str, float]:
    clock = time.perf_counter_ns
    samples = []
    for unit in units:
        start = clock()
        function(unit)
        samples.append(clock() - start)
    samples.sort()
    return {
        "p50_us": samples[len(samples) // 2] / 1000,
        "p99_us": samples[int(len(samples) * 0.99)] / 1000,
    }


def throughput(function, units: list[str]) -> float:
    start = time.perf_counter()
    for unit in units:
        function(unit)
    return len(units) / (time.perf_counter() - start)


def victor_assign(units: list[str]) -> dict[str, float]:
    experiment = Experiment("bench", VARIANTS, WEIGHTS, seed="bench-1")
    throughput(experiment.assign, units[:100_000])  # warm-up
    return {"per_second": throughput(experiment.assign, units)} | per_call(
        experiment.assign, units[:200_000]
    )


def growthbook_eval(units: list[str]) -> dict[str, float] | str:
    try:
        from growthbook import GrowthBook
    except ImportError:
        return "growthbook is not installed"
    features = {
        "prompt": {
            "defaultValue": "control",
            "rules": [
                {
                    "key": "bench",
                    "variations": ["control", "a", "b"],
                    "weights": [0.5, 0.25, 0.25],
                    "hashAttribute": "id",
                    "seed": "bench-1",
                }
            ],
        }
    }
    gb = GrowthBook(attributes={"id": "warm-up"}, features=features)

    def evaluate(unit: str) -> object:
        gb.set_attributes({"id": unit})
        return gb.eval_feature("prompt").value

    assert {evaluate(u) for u in units[:1000]} == {"control", "a", "b"}
    return {"per_second": throughput(evaluate, units)} | per_call(evaluate, units[:20_000])


def analyze_times(n: int) -> dict[str, float]:
    rng = np.random.default_rng(1)
    half = n // 2
    before = {v: rng.normal(100, 20, half) for v in ("control", "a")}
    after = {v: before[v] + rng.normal(0.5 * (v == "a"), 5, half) for v in before}
    rates = {v: rng.binomial(1, 0.3, half).astype(float) for v in before}
    runs = {
        "mean": lambda: analyze(after, "control"),
        "proportion": lambda: analyze(rates, "control", kind="proportion"),
        "mean, sequential": lambda: analyze(after, "control", sequential=True),
        "mean, CUPED": lambda: analyze(after, "control", covariates=before),
    }
    out = {}
    for name, run in runs.items():
        run()
        times = []
        for _ in range(5):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        out[name] = statistics.median(times) * 1000
    return out


def empty_call_ns() -> float:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(100_000):
        start = clock()
        samples.append(clock() - start)
    samples.sort()
    return samples[len(samples) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--units", type=int, default=1_000_000)
    parser.add_argument("--json")
    args = parser.parse_args()
    units = [f"user-{i}" for i in range(args.units)]
    result = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_before": os.getloadavg(),
        "timer_ns": empty_call_ns(),
        "victor_assign": victor_assign(units),
        "growthbook_eval_feature": growthbook_eval(units[:200_000]),
        "analyze_ms_1m_units": analyze_times(args.units),
        "load_after": os.getloadavg(),
    }
    victor, peer = result["victor_assign"], result["growthbook_eval_feature"]
    if isinstance(peer, dict):
        result["ratio"] = victor["per_second"] / peer["per_second"]
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=2)


if __name__ == "__main__":
    main()
