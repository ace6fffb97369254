"""Experiments from a YAML file; every error names the file, line and field.

```yaml
experiments:
  - name: prompt-test
    variants:
      control: {temperature: 0.7}
      concise: {temperature: 0.5, system_prompt: "Answer in one sentence."}
    weights: {control: 0.5, concise: 0.5}
    control: control          # default: the first variant
    unit: session             # session | user | tenant
    seed: prompt-test-1       # default: the name
    coverage: 1.0             # share of units in the experiment
    status: running           # draft | running | stopped
    namespace: {name: prompts, start: 0.0, end: 0.5}
    holdout: {name: global, fraction: 0.05}
    start: 2026-01-05T00:00:00Z
    end: 2026-02-05T00:00:00Z
    metrics: {primary: good_answer, secondary: [latency_ms], guardrails: [cost_usd]}
```
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from victor.errors import ConfigError
from victor.experiments.experiment import Experiment, Holdout, Namespace, check_exclusive

__all__ = ["load_experiments", "parse_experiments"]

FIELDS = (
    "name",
    "description",
    "variants",
    "weights",
    "control",
    "unit",
    "seed",
    "coverage",
    "status",
    "namespace",
    "holdout",
    "start",
    "end",
    "metrics",
)
METRIC_FIELDS = ("primary", "secondary", "guardrails")


def load_experiments(path: str | Path) -> list[Experiment]:
    """The experiments of a YAML file (see the module's docstring for the format)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read experiments file: {exc.strerror}") from exc
    return parse_experiments(text, source=str(path))


def parse_experiments(text: str, *, source: str = "<string>") -> list[Experiment]:
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise ConfigError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from exc
    finally:
        loader.dispose()
    reader = _Reader(loader, source)
    if root is None:
        return []
    top = reader.mapping(root, "the file")
    unknown = [k for k in top if k != "experiments"]
    if unknown:
        key_node, _ = top[unknown[0]]
        raise reader.error(key_node, unknown[0], "unknown top-level key; expected 'experiments'")
    if "experiments" not in top:
        return []
    _, items = top["experiments"]
    if not isinstance(items, yaml.SequenceNode):
        raise reader.error(items, "experiments", "must be a list of experiments")
    experiments = [reader.experiment(node, i) for i, node in enumerate(items.value)]
    names = [e.name for e in experiments]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise reader.error(items.value[i], f"experiments[{i}].name", f"{name!r} repeated")
    try:
        check_exclusive(experiments)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return experiments


class _Reader:
    def __init__(self, loader: Any, source: str) -> None:
        self.loader = loader
        self.source = source

    def error(self, node: Any, field: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}:{node.start_mark.line + 1}: {field}: {message}")

    def value(self, node: Any) -> Any:
        return self.loader.construct_object(node, deep=True)

    def mapping(self, node: Any, field: str) -> dict[str, tuple[Any, Any]]:
        import yaml

        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, field, "must be a mapping")
        return {str(self.value(k)): (k, v) for k, v in node.value}

    def experiment(self, node: Any, index: int) -> Experiment:
        where = f"experiments[{index}]"
        fields = self.mapping(node, where)
        for key, (key_node, _) in fields.items():
            if key not in FIELDS:
                close = difflib.get_close_matches(key, FIELDS, 1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                accepted = ", ".join(FIELDS)
                raise self.error(
                    key_node, f"{where}.{key}", f"unknown field{hint}; accepted: {accepted}"
                )
        for required in ("name", "variants"):
            if required not in fields:
                raise self.error(node, where, f"missing field {required!r}")
        name_node = fields["name"][1]
        name = self.value(name_node)
        if not isinstance(name, str) or not name:
            raise self.error(name_node, f"{where}.name", "must be a non-empty string")
        where = f"experiment {name!r}"

        variants_node = fields["variants"][1]
        variants = {}
        for variant, (_, config_node) in self.mapping(variants_node, f"{where}.variants").items():
            config = self.value(config_node)
            if config is None:
                config = {}
            if not isinstance(config, Mapping):
                raise self.error(config_node, f"{where}.variants.{variant}", "must be a mapping")
            variants[variant] = config
        if not variants:
            raise self.error(variants_node, f"{where}.variants", "no variants")

        kwargs: dict[str, Any] = {}
        if "weights" in fields:
            weights_node = fields["weights"][1]
            weights = self.mapping(weights_node, f"{where}.weights")
            for variant, (key_node, _) in weights.items():
                if variant not in variants:
                    raise self.error(
                        key_node,
                        f"{where}.weights.{variant}",
                        f"unknown variant; variants: {', '.join(variants)}",
                    )
            kwargs["weights"] = {v: self.value(n) for v, (_, n) in weights.items()}
        if "control" in fields:
            control_node = fields["control"][1]
            control = self.value(control_node)
            if control not in variants:
                raise self.error(
                    control_node,
                    f"{where}.control",
                    f"{control!r} is not a variant; variants: {', '.join(variants)}",
                )
            kwargs["control"] = control
        for key in ("unit", "seed", "coverage", "status", "description"):
            if key in fields:
                kwargs[key] = self.value(fields[key][1])
        for key in ("start", "end"):
            if key in fields:
                kwargs[key] = self.moment(fields[key][1], f"{where}.{key}")
        if "namespace" in fields:
            kwargs["namespace"] = self.part(Namespace, fields["namespace"][1], f"{where}.namespace")
        if "holdout" in fields:
            kwargs["holdout"] = self.part(Holdout, fields["holdout"][1], f"{where}.holdout")
        if "metrics" in fields:
            kwargs.update(self.metrics(fields["metrics"][1], f"{where}.metrics"))

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                experiment = Experiment(name, variants, **kwargs)
            except ConfigError as exc:
                raise self.error(node, where, str(exc)) from None
        for warning in caught:
            warnings.warn(
                f"{self.source}:{node.start_mark.line + 1}: {warning.message}",
                warning.category,
                stacklevel=4,
            )
        return experiment

    def moment(self, node: Any, field: str) -> datetime:
        value = self.value(node)
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day, tzinfo=UTC)
        raise self.error(node, field, f"must be a date or a date and time (got {value!r})")

    def part(self, cls: type, node: Any, field: str) -> Any:
        value = self.value(node)
        if not isinstance(value, Mapping):
            raise self.error(node, field, "must be a mapping")
        try:
            return cls(**value)
        except TypeError as exc:
            raise self.error(node, field, str(exc)) from None
        except ConfigError as exc:
            raise self.error(node, field, str(exc)) from None

    def metrics(self, node: Any, field: str) -> dict[str, Any]:
        fields = self.mapping(node, field)
        out: dict[str, Any] = {}
        for key, (key_node, value_node) in fields.items():
            if key not in METRIC_FIELDS:
                accepted = ", ".join(METRIC_FIELDS)
                raise self.error(key_node, f"{field}.{key}", f"unknown field; accepted: {accepted}")
            value = self.value(value_node)
            if key == "primary":
                if not isinstance(value, str):
                    raise self.error(value_node, f"{field}.primary", "must be a metric name")
                out["primary_metric"] = value
            else:
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise self.error(value_node, f"{field}.{key}", "must be a list of metric names")
                out["secondary_metrics" if key == "secondary" else "guardrail_metrics"] = value
        return out
