"""A/B experiments over session configs: sticky assignment and a statistics-grade analysis.

```python
from victor.experiments import Experiment, analyze, srm_check

experiment = Experiment(
    name="prompt-test",
    variants={"control": {"temperature": 0.7}, "concise": {"temperature": 0.3}},
    weights={"control": 0.5, "concise": 0.5},
    seed="prompt-test-1",
)
experiment.assign("session-123")  # "control" or "concise", the same on every host
```
numpy and scipy are imported when an analysis first runs; the report (which reads the
analytics store) on first use.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from victor.experiments.analysis import (
    Analysis,
    Comparison,
    SRMResult,
    VariantSummary,
    analyze,
    srm_check,
)
from victor.experiments.experiment import (
    BUCKETS,
    Experiment,
    Holdout,
    Namespace,
    check_exclusive,
)
from victor.experiments.inference import benjamini_hochberg, holm, sample_size
from victor.experiments.loading import load_experiments, parse_experiments

if TYPE_CHECKING:
    from victor.experiments.report import (
        ExperimentReport,
        MetricReport,
        VariantVerdict,
        report,
    )
from victor.experiments.table import (
    AssignmentTable,
    PostgresAssignmentTable,
    SQLiteAssignmentTable,
)

__all__ = [
    "BUCKETS",
    "Analysis",
    "AssignmentTable",
    "Comparison",
    "Experiment",
    "ExperimentReport",
    "Holdout",
    "MetricReport",
    "Namespace",
    "PostgresAssignmentTable",
    "SQLiteAssignmentTable",
    "SRMResult",
    "VariantSummary",
    "VariantVerdict",
    "analyze",
    "benjamini_hochberg",
    "check_exclusive",
    "holm",
    "load_experiments",
    "parse_experiments",
    "report",
    "sample_size",
    "srm_check",
]


_LAZY = {"ExperimentReport", "MetricReport", "VariantVerdict", "report"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module("victor.experiments.report"), name)
    globals()[name] = value
    return value
