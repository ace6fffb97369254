"""An experiment: variants of a session's config, and which variant a unit gets.

Assignment is a hash of (experiment seed, unit id) into 10,000 buckets: xxh3-64 of the
unit id's UTF-8 bytes, seeded by the first 8 bytes of blake2b(seed). It is the same on
every process and host, whatever ``PYTHONHASHSEED``, with no shared state. Variants take
consecutive ranges of buckets, each ``coverage * weight`` wide and starting where the
previous variant's full range would start, so raising ``coverage`` only adds units.
Changing weights does move units; the assignment table (:mod:`.table`) keeps them.
"""

from __future__ import annotations

import itertools
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from hashlib import blake2b
from typing import Any, Final, Literal

import xxhash

from victor.errors import ConfigError

__all__ = [
    "BUCKETS",
    "STATUSES",
    "UNITS",
    "Experiment",
    "Holdout",
    "Namespace",
    "check_exclusive",
    "hash_seed",
]

BUCKETS: Final = 10_000
Unit = Literal["session", "user", "tenant"]
Status = Literal["draft", "running", "stopped"]
UNITS: Final[tuple[str, ...]] = ("session", "user", "tenant")
STATUSES: Final[tuple[str, ...]] = ("draft", "running", "stopped")
RUNNING: Final = "running"
_WEIGHT_TOLERANCE = 1e-6

_xxh3 = xxhash.xxh3_64_intdigest


def hash_seed(seed: str | int) -> int:
    """The 64-bit xxh3 seed of an experiment (or namespace, holdout) seed."""
    return int.from_bytes(blake2b(str(seed).encode(), digest_size=8).digest(), "little")


def bucket_of(seed: int, unit_id: str) -> int:
    """The unit's bucket, 0 to 9,999, under a seed from :func:`hash_seed`."""
    return _xxh3(unit_id.encode(), seed) % BUCKETS


@dataclass(frozen=True, slots=True)
class Namespace:
    """Experiments of one namespace are mutually exclusive when their ranges do not
    overlap: a unit falls in one place of the namespace (a hash of the namespace name and
    the unit id), and only the experiment whose ``[start, end)`` holds it may take it."""

    name: str
    start: float = 0.0
    end: float = 1.0

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("namespace: name must not be empty")
        if not 0.0 <= self.start < self.end <= 1.0:
            raise ConfigError(
                f"namespace {self.name!r}: range must satisfy 0 <= start < end <= 1 "
                f"(got start={self.start}, end={self.end})"
            )


@dataclass(frozen=True, slots=True)
class Holdout:
    """A share of units kept out of every experiment naming the same holdout (a hash of
    the holdout name and the unit id), to measure all of them together against none."""

    name: str
    fraction: float

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("holdout: name must not be empty")
        if not 0.0 <= self.fraction < 1.0:
            raise ConfigError(
                f"holdout {self.name!r}: fraction must be in [0, 1) (got {self.fraction})"
            )


def _normalised_weights(
    name: str, variants: Sequence[str], weights: Mapping[str, float] | None
) -> dict[str, float]:
    if weights is None:
        return {v: 1.0 / len(variants) for v in variants}
    unknown = [w for w in weights if w not in variants]
    if unknown:
        raise ConfigError(
            f"experiment {name!r}: weights name unknown variant(s) "
            f"{', '.join(map(repr, unknown))}; variants: {', '.join(variants)}"
        )
    missing = [v for v in variants if v not in weights]
    if missing:
        raise ConfigError(
            f"experiment {name!r}: no weight for variant(s) {', '.join(map(repr, missing))}"
        )
    for variant, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise ConfigError(
                f"experiment {name!r}: weight of {variant!r} must be a number (got {weight!r})"
            )
        if not math.isfinite(weight) or weight < 0:
            raise ConfigError(
                f"experiment {name!r}: weight of {variant!r} must be >= 0 (got {weight})"
            )
    total = float(sum(weights.values()))
    if total <= 0:
        raise ConfigError(f"experiment {name!r}: weights are all zero")
    if abs(total - 1.0) > _WEIGHT_TOLERANCE:
        warnings.warn(
            f"experiment {name!r}: weights sum to {total:g}, not 1; normalised",
            UserWarning,
            stacklevel=3,
        )
    return {v: float(weights[v]) / total for v in variants}


class Experiment:
    """Variants (name -> config dict) of a session's config, split by weight.

    ``experiment.assign(unit_id)`` gives the unit's variant name, or None when the unit
    is not in the experiment (outside ``coverage``, its namespace range or in the
    holdout; the experiment not running, or outside ``start``..``end``). The caller
    then uses the base config.
    """

    __slots__ = (
        "_holdout_seed",
        "_namespace_seed",
        "_plain",
        "_seed",
        "_table",
        "control",
        "coverage",
        "description",
        "end",
        "guardrail_metrics",
        "holdout",
        "name",
        "namespace",
        "primary_metric",
        "secondary_metrics",
        "seed",
        "start",
        "status",
        "unit",
        "variants",
        "weights",
    )

    def __init__(
        self,
        name: str,
        variants: Mapping[str, Mapping[str, Any]],
        weights: Mapping[str, float] | None = None,
        *,
        control: str | None = None,
        unit: Unit = "session",
        seed: str | int | None = None,
        coverage: float = 1.0,
        status: Status = "running",
        namespace: Namespace | None = None,
        holdout: Holdout | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        primary_metric: str | None = None,
        secondary_metrics: Sequence[str] = (),
        guardrail_metrics: Sequence[str] = (),
        description: str = "",
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError("experiment: name must be a non-empty string")
        if not variants:
            raise ConfigError(f"experiment {name!r}: no variants; give at least two")
        for variant, config in variants.items():
            if not isinstance(variant, str) or not variant:
                raise ConfigError(f"experiment {name!r}: variant names must be non-empty strings")
            if not isinstance(config, Mapping):
                raise ConfigError(
                    f"experiment {name!r}: variant {variant!r} must be a config dict "
                    f"(got {type(config).__name__})"
                )
        names = list(variants)
        if control is None:
            control = names[0]
        elif control not in variants:
            raise ConfigError(
                f"experiment {name!r}: control {control!r} is not a variant; "
                f"variants: {', '.join(names)}"
            )
        if unit not in UNITS:
            raise ConfigError(
                f"experiment {name!r}: unit {unit!r} unknown; accepted: {', '.join(UNITS)}"
            )
        if status not in STATUSES:
            raise ConfigError(
                f"experiment {name!r}: status {status!r} unknown; accepted: {', '.join(STATUSES)}"
            )
        if isinstance(coverage, bool) or not isinstance(coverage, int | float):
            raise ConfigError(f"experiment {name!r}: coverage must be a number in [0, 1]")
        if not 0.0 <= coverage <= 1.0:
            raise ConfigError(f"experiment {name!r}: coverage must be in [0, 1] (got {coverage})")
        if start is not None and end is not None and end <= start:
            raise ConfigError(f"experiment {name!r}: end ({end}) is not after start ({start})")
        self.name = name
        self.variants = {v: dict(c) for v, c in variants.items()}
        self.weights = _normalised_weights(name, names, weights)
        self.control = control
        self.unit = unit
        self.seed = name if seed is None else seed
        self.coverage = float(coverage)
        self.status = status
        self.namespace = namespace
        self.holdout = holdout
        self.start = start
        self.end = end
        self.primary_metric = primary_metric
        self.secondary_metrics = tuple(secondary_metrics)
        self.guardrail_metrics = tuple(guardrail_metrics)
        self.description = description
        self._seed = hash_seed(self.seed)
        self._table = self._bucket_table()
        self._holdout_seed = hash_seed(f"holdout:{holdout.name}") if holdout else 0
        self._namespace_seed = hash_seed(f"namespace:{namespace.name}") if namespace else 0
        self._plain = namespace is None and holdout is None and start is None and end is None

    def _bucket_table(self) -> list[str | None]:
        """Bucket -> variant (None between the covered ranges)."""
        table: list[str | None] = [None] * BUCKETS
        cumulative = 0.0
        for variant, weight in self.weights.items():
            first = round(cumulative * BUCKETS)
            last = round((cumulative + self.coverage * weight) * BUCKETS)
            table[first : min(last, BUCKETS)] = [variant] * (min(last, BUCKETS) - first)
            cumulative += weight
        return table

    def assign(self, unit_id: str) -> str | None:
        """The unit's variant, or None when the unit is not in the experiment."""
        if self.status != RUNNING:
            return None
        if self._plain:
            return self._table[_xxh3(unit_id.encode(), self._seed) % BUCKETS]
        if not self._eligible(unit_id):
            return None
        return self._table[_xxh3(unit_id.encode(), self._seed) % BUCKETS]

    def _eligible(self, unit_id: str) -> bool:
        if self.start is not None or self.end is not None:
            now = time.time()
            if self.start is not None and now < self.start.timestamp():
                return False
            if self.end is not None and now >= self.end.timestamp():
                return False
        if self.holdout is not None:
            held = bucket_of(self._holdout_seed, unit_id)
            if held < round(self.holdout.fraction * BUCKETS):
                return False
        if self.namespace is not None:
            spot = bucket_of(self._namespace_seed, unit_id)
            first = round(self.namespace.start * BUCKETS)
            if not first <= spot < round(self.namespace.end * BUCKETS):
                return False
        return True

    def config_of(self, variant: str) -> dict[str, Any]:
        """A copy of the variant's config."""
        try:
            return dict(self.variants[variant])
        except KeyError:
            raise ConfigError(
                f"experiment {self.name!r}: no variant {variant!r}; "
                f"variants: {', '.join(self.variants)}"
            ) from None

    def __repr__(self) -> str:
        return (
            f"Experiment(name={self.name!r}, variants={list(self.variants)}, "
            f"weights={self.weights}, status={self.status!r})"
        )


def check_exclusive(experiments: Sequence[Experiment]) -> None:
    """Raise :class:`ConfigError` when two experiments of a namespace overlap."""
    by_namespace: dict[str, list[Experiment]] = {}
    for experiment in experiments:
        if experiment.namespace is not None:
            by_namespace.setdefault(experiment.namespace.name, []).append(experiment)
    for name, members in by_namespace.items():
        members.sort(key=lambda e: e.namespace.start)  # type: ignore[union-attr]
        for before, after in itertools.pairwise(members):
            if after.namespace.start < before.namespace.end:  # type: ignore[union-attr]
                raise ConfigError(
                    f"namespace {name!r}: experiments {before.name!r} and {after.name!r} "
                    "overlap; give them disjoint ranges"
                )
