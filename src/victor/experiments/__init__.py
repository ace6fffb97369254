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
numpy and scipy are imported when an analysis first runs.
"""

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
from victor.experiments.inference import holm, sample_size
from victor.experiments.loading import load_experiments, parse_experiments
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
    "Holdout",
    "Namespace",
    "PostgresAssignmentTable",
    "SQLiteAssignmentTable",
    "SRMResult",
    "VariantSummary",
    "analyze",
    "check_exclusive",
    "holm",
    "load_experiments",
    "parse_experiments",
    "sample_size",
    "srm_check",
]
