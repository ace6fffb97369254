"""Experiments: deterministic, sticky assignment, YAML definitions and their errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest

from victor.errors import ConfigError
from victor.experiments import (
    Experiment,
    Holdout,
    Namespace,
    PostgresAssignmentTable,
    SQLiteAssignmentTable,
    check_exclusive,
    load_experiments,
    parse_experiments,
    srm_check,
)

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {"control": {"temperature": 0.7}, "a": {"temperature": 0.5}, "b": {"temperature": 0.9}}
WEIGHTS = {"control": 0.5, "a": 0.25, "b": 0.25}
UNITS = [f"user-{i}" for i in range(20_000)]


def test_assignment_splits_by_the_weights_and_passes_the_srm_check():
    experiment = Experiment("split", VARIANTS, WEIGHTS, seed="s1")
    counts = Counter(experiment.assign(u) for u in UNITS)
    assert set(counts) == set(VARIANTS)
    assert not srm_check(counts, WEIGHTS).flagged
    assert abs(counts["control"] / len(UNITS) - 0.5) < 0.015


def test_assignment_is_the_same_for_the_same_seed_and_differs_for_another():
    first = Experiment("x", VARIANTS, WEIGHTS, seed="s1")
    again = Experiment("x", VARIANTS, WEIGHTS, seed="s1")
    other = Experiment("x", VARIANTS, WEIGHTS, seed="s2")
    assert [first.assign(u) for u in UNITS] == [again.assign(u) for u in UNITS]
    moved = sum(first.assign(u) != other.assign(u) for u in UNITS)
    assert moved > len(UNITS) * 0.4  # an independent split, not a shifted copy


_CHILD = """
import json, sys
from victor.experiments import Experiment
e = Experiment("x", {"control": {}, "a": {}, "b": {}}, {"control": .5, "a": .25, "b": .25}, seed=7)
print(json.dumps([e.assign(f"user-{i}") for i in range(2000)]))
"""


def test_the_same_unit_gets_the_same_variant_in_processes_with_different_hash_seeds():
    runs = []
    for hash_seed in ("1", "987654"):
        done = subprocess.run(
            [sys.executable, "-c", _CHILD],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT / "src")},
        )
        runs.append(json.loads(done.stdout))
    assert runs[0] == runs[1]
    here = Experiment("x", {"control": {}, "a": {}, "b": {}}, WEIGHTS, seed=7)
    assert runs[0] == [here.assign(f"user-{i}") for i in range(2000)]
    # Pinned: a change of the hash would move every running experiment's units.
    assert runs[0][:6] == ["control", "b", "control", "a", "control", "control"]


def test_raising_coverage_only_adds_units():
    small = Experiment("ramp", VARIANTS, WEIGHTS, coverage=0.2)
    large = Experiment("ramp", VARIANTS, WEIGHTS, coverage=0.6)
    before = {u: small.assign(u) for u in UNITS}
    after = {u: large.assign(u) for u in UNITS}
    included = [u for u, v in before.items() if v is not None]
    assert 0.18 < len(included) / len(UNITS) < 0.22
    assert all(after[u] == before[u] for u in included)
    assert 0.58 < sum(v is not None for v in after.values()) / len(UNITS) < 0.62


def test_experiments_of_a_namespace_never_share_a_unit():
    left = Experiment("left", VARIANTS, namespace=Namespace("prompts", 0.0, 0.5))
    right = Experiment("right", VARIANTS, namespace=Namespace("prompts", 0.5, 1.0))
    check_exclusive([left, right])
    both = [u for u in UNITS if left.assign(u) and right.assign(u)]
    either = [u for u in UNITS if left.assign(u) or right.assign(u)]
    assert both == [] and len(either) == len(UNITS)
    with pytest.raises(ConfigError, match="'left' and 'overlap' overlap"):
        check_exclusive(
            [left, Experiment("overlap", VARIANTS, namespace=Namespace("prompts", 0.4, 0.6))]
        )


def test_a_holdout_keeps_the_same_units_out_of_every_experiment():
    holdout = Holdout("global", 0.1)
    one = Experiment("one", VARIANTS, holdout=holdout)
    two = Experiment("two", VARIANTS, seed="other", holdout=holdout)
    out_one = {u for u in UNITS if one.assign(u) is None}
    out_two = {u for u in UNITS if two.assign(u) is None}
    assert out_one == out_two
    assert 0.08 < len(out_one) / len(UNITS) < 0.12


def test_a_draft_or_stopped_experiment_assigns_no_one():
    for status in ("draft", "stopped"):
        experiment = Experiment("s", VARIANTS, status=status)
        assert {experiment.assign(u) for u in UNITS[:100]} == {None}


async def test_the_table_keeps_assigned_units_when_the_weights_change(tmp_path):
    table = SQLiteAssignmentTable(tmp_path / "assignments.db")
    even = Experiment("weights", VARIANTS, WEIGHTS, seed=3)
    first = {u: await table.assign(even, u) for u in UNITS[:2000]}
    skewed = Experiment("weights", VARIANTS, {"control": 0.1, "a": 0.1, "b": 0.8}, seed=3)
    # Without the table the new weights move units...
    assert sum(skewed.assign(u) != first[u] for u in first) > 500
    # ...with it, none; new units follow the new weights.
    assert {u: await table.assign(skewed, u) for u in first} == first
    new = Counter([await table.assign(skewed, u) for u in UNITS[2000:4000]])
    assert new["b"] > 1400
    await table.aclose()
    reopened = SQLiteAssignmentTable(tmp_path / "assignments.db")
    assert await reopened.assign(skewed, UNITS[0]) == first[UNITS[0]]
    await reopened.aclose()


@pytest.mark.postgres
async def test_the_postgres_table_keeps_assigned_units_when_the_weights_change(postgres_dsn):
    import asyncpg

    schema = f"exp_{uuid.uuid4().hex[:12]}"
    table = PostgresAssignmentTable(postgres_dsn, schema=schema)
    try:
        even = Experiment("weights", VARIANTS, WEIGHTS, seed=3)
        first = {u: await table.assign(even, u) for u in UNITS[:300]}
        skewed = Experiment("weights", VARIANTS, {"control": 0.1, "a": 0.1, "b": 0.8}, seed=3)
        assert {u: await table.assign(skewed, u) for u in first} == first
        assert await table.assign(skewed, "new-unit") == skewed.assign("new-unit")
    finally:
        await table.aclose()
        connection = await asyncpg.connect(postgres_dsn)
        await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await connection.close()


# -- bad input ------------------------------------------------------------------------------


def test_weights_that_do_not_sum_to_one_are_normalised_with_a_warning():
    with pytest.warns(UserWarning, match="weights sum to 4, not 1; normalised"):
        experiment = Experiment("w", {"a": {}, "b": {}}, {"a": 1, "b": 3})
    assert experiment.weights == {"a": 0.25, "b": 0.75}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"weights": {"a": -1, "b": 2}}, "weight of 'a' must be >= 0"),
        ({"weights": {"a": 0, "b": 0}}, "weights are all zero"),
        ({"weights": {"a": 1, "c": 1}}, "unknown variant"),
        ({"weights": {"a": 1}}, "no weight for variant"),
        ({"control": "c"}, "control 'c' is not a variant; variants: a, b"),
        ({"unit": "device"}, "unit 'device' unknown; accepted: session, user, tenant"),
        ({"status": "paused"}, "accepted: draft, running, stopped"),
        ({"coverage": 1.5}, "coverage must be in"),
    ],
)
def test_bad_definitions_are_clear_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Experiment("bad", {"a": {}, "b": {}}, **kwargs)


def test_an_empty_variant_set_is_an_error():
    with pytest.raises(ConfigError, match="no variants"):
        Experiment("empty", {})


# -- YAML -----------------------------------------------------------------------------------

GOOD_YAML = """\
experiments:
  - name: prompt-test
    variants:
      control: {temperature: 0.7}
      concise: {temperature: 0.3}
    weights: {control: 0.5, concise: 0.5}
    unit: user
    seed: pt-1
    coverage: 0.5
    namespace: {name: prompts, start: 0.0, end: 0.5}
    holdout: {name: global, fraction: 0.05}
    start: 2026-01-05
    metrics: {primary: good_answer, guardrails: [cost_usd]}
  - name: models
    status: draft
    variants:
      small: {model: small}
      large: {model: large}
    namespace: {name: prompts, start: 0.5, end: 1.0}
"""


def test_experiments_load_from_yaml(tmp_path):
    path = tmp_path / "experiments.yaml"
    path.write_text(GOOD_YAML)
    first, second = load_experiments(path)
    assert first.name == "prompt-test" and first.unit == "user" and first.coverage == 0.5
    assert first.variants["concise"] == {"temperature": 0.3}
    assert first.namespace == Namespace("prompts", 0.0, 0.5)
    assert first.guardrail_metrics == ("cost_usd",) and first.primary_metric == "good_answer"
    assert first.start is not None and first.start.tzinfo is not None
    assert second.status == "draft" and second.control == "small"
    python = Experiment(
        "prompt-test",
        first.variants,
        {"control": 0.5, "concise": 0.5},
        seed="pt-1",
        coverage=0.5,
        namespace=first.namespace,
        holdout=first.holdout,
    )
    assert [python.assign(u) for u in UNITS[:500]] == [first.assign(u) for u in UNITS[:500]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "experiments:\n  - name: x\n    variants: {a: {}, b: {}}\n    weights: {a: 1, c: 1}\n",
            r"exp.yaml:4: experiment 'x'.weights.c: unknown variant; variants: a, b",
        ),
        (
            "experiments:\n  - name: x\n    variants: {a: {}, b: {}}\n    control: z\n",
            r"exp.yaml:4: experiment 'x'.control: 'z' is not a variant",
        ),
        (
            "experiments:\n  - name: x\n    variants: {a: {}}\n    weigths: {a: 1}\n",
            r"exp.yaml:4: experiments\[0\].weigths: unknown field \(did you mean 'weights'\?\)",
        ),
        (
            "experiments:\n  - name: x\n    variants: {a: {}}\n    weights: {a: -2}\n",
            r"exp.yaml:2: experiment 'x': .*weight of 'a' must be >= 0",
        ),
        ("experiments:\n  - name: x\n", r"exp.yaml:2: experiments\[0\]: missing field 'variants'"),
        ("experiments:\n  - name: [x\n", r"exp.yaml:3: invalid YAML"),
    ],
)
def test_bad_yaml_names_the_file_line_and_field(tmp_path, text, message):
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_experiments(path)


def test_yaml_weights_not_summing_to_one_warn_with_the_line():
    text = "experiments:\n  - name: x\n    variants: {a: {}, b: {}}\n    weights: {a: 2, b: 2}\n"
    with pytest.warns(UserWarning, match=r"exp.yaml:2: experiment 'x': weights sum to 4"):
        (experiment,) = parse_experiments(text, source="exp.yaml")
    assert experiment.weights == {"a": 0.5, "b": 0.5}
