"""Model prices: a versioned table with effective dates, so a report over last quarter
uses last quarter's prices. A model not in the table is *unpriced* (cost ``None``), never $0.

Prices for models the built-in table lacks (a fine-tune, a self-hosted model, a negotiated
rate) come from a YAML or JSON file or a dict (:func:`load_price_table`); the file named by
``VICTOR_PRICES_FILE`` extends :func:`default_price_table`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from victor.errors import ConfigError
from victor.protocols.messages import Usage

PRICE_TABLE_VERSION = "2026-11-01"


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per million tokens for one model from ``effective_from`` on."""

    model: str
    input: float
    output: float
    cached_input: float | None = None  # None: cached tokens cost the same as input
    effective_from: date = date(2000, 1, 1)

    def cost(self, usage: Usage) -> float:
        cached = min(usage.cached_input_tokens, usage.input_tokens)
        cached_rate = self.input if self.cached_input is None else self.cached_input
        total = (
            (usage.input_tokens - cached) * self.input
            + cached * cached_rate
            + usage.output_tokens * self.output
        )
        return total / 1_000_000


def _p(model: str, inp: float, out: float, cached: float | None, since: str = "2000-01-01"):
    return ModelPrice(model, inp, out, cached, date.fromisoformat(since))


# List prices of the providers' public pages, per million tokens. ``input_tokens`` counts
# cached tokens too (OpenAI's convention; the Anthropic provider adds cache reads in).
BUILTIN_PRICES: tuple[ModelPrice, ...] = (
    # OpenAI
    _p("gpt-4o", 5.00, 15.00, None, "2024-05-13"),
    _p("gpt-4o", 2.50, 10.00, 1.25, "2024-10-01"),
    _p("gpt-4o-mini", 0.15, 0.60, 0.075, "2024-07-18"),
    _p("gpt-4.1", 2.00, 8.00, 0.50, "2025-04-14"),
    _p("gpt-4.1-mini", 0.40, 1.60, 0.10, "2025-04-14"),
    _p("gpt-4.1-nano", 0.10, 0.40, 0.025, "2025-04-14"),
    _p("o3", 10.00, 40.00, 2.50, "2025-04-16"),
    _p("o3", 2.00, 8.00, 0.50, "2025-06-10"),
    _p("o4-mini", 1.10, 4.40, 0.275, "2025-04-16"),
    _p("gpt-5", 1.25, 10.00, 0.125, "2025-08-07"),
    _p("gpt-5-mini", 0.25, 2.00, 0.025, "2025-08-07"),
    _p("gpt-5-nano", 0.05, 0.40, 0.005, "2025-08-07"),
    # Anthropic (cached_input is the cache-read price)
    _p("claude-3-5-haiku", 0.80, 4.00, 0.08, "2024-10-22"),
    _p("claude-3-7-sonnet", 3.00, 15.00, 0.30, "2025-02-24"),
    _p("claude-sonnet-4", 3.00, 15.00, 0.30, "2025-05-22"),
    _p("claude-opus-4", 15.00, 75.00, 1.50, "2025-05-22"),
    _p("claude-opus-4-1", 15.00, 75.00, 1.50, "2025-08-05"),
    _p("claude-sonnet-4-5", 3.00, 15.00, 0.30, "2025-09-29"),
    _p("claude-haiku-4-5", 1.00, 5.00, 0.10, "2025-10-15"),
    _p("claude-opus-4-5", 5.00, 25.00, 0.50, "2025-11-24"),
)


class PriceTable:
    """Looks up a model's price on a date.

    Dated snapshots resolve to their family (``gpt-4o-2024-08-06`` -> ``gpt-4o``,
    ``claude-sonnet-4-5-20250929`` -> ``claude-sonnet-4-5``) by longest matching prefix;
    ``provider/model`` names (as routers write them) drop the provider.
    """

    def __init__(
        self, prices: Iterable[ModelPrice] = BUILTIN_PRICES, *, version: str = PRICE_TABLE_VERSION
    ) -> None:
        self.version = version
        self._by_model: dict[str, list[ModelPrice]] = {}
        self._resolved: dict[str, str | None] = {}
        for price in prices:
            self.add(price)

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any] | Iterable[Mapping[str, Any]], *, builtin: bool = True
    ) -> PriceTable:
        """A table from config: ``{"version": ..., "prices": [{model, input, output, ...}]}``,
        ``{"models": {name: {input, output, ...} or [dated entries]}}`` or a bare list.
        ``builtin``: start from the built-in prices (the config adds and overrides)."""
        table = cls(BUILTIN_PRICES if builtin else ())
        table.load(config)
        return table

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, builtin: bool = True) -> PriceTable:
        """A table from a YAML (``.yaml``/``.yml``) or JSON file; see :meth:`from_config`."""
        table = cls(BUILTIN_PRICES if builtin else ())
        table.load(_read_config(Path(path)), source=str(path))
        return table

    def load(
        self, config: Mapping[str, Any] | Iterable[Mapping[str, Any]], *, source: str = "config"
    ) -> None:
        """Add the prices of a config (see :meth:`from_config`); errors name the entry."""
        entries: list[Mapping[str, Any]] = []
        if isinstance(config, Mapping):
            if "version" in config:
                self.version = str(config["version"])
            entries.extend(config.get("prices") or [])
            for model, spec in (config.get("models") or {}).items():
                for item in spec if isinstance(spec, list) else [spec]:
                    entries.append({"model": model, **item})
        else:
            entries.extend(config)
        for index, entry in enumerate(entries):
            try:
                self.extend([entry])
            except (KeyError, TypeError, ValueError) as exc:
                what = entry.get("model", "?") if isinstance(entry, Mapping) else entry
                raise ValueError(f"{source}: price entry {index} ({what!r}): {exc!r}") from None

    def add(self, price: ModelPrice) -> None:
        versions = self._by_model.setdefault(price.model, [])
        versions.append(price)
        versions.sort(key=lambda p: p.effective_from)
        self._resolved.clear()

    def extend(self, entries: Iterable[Mapping[str, Any]]) -> None:
        """Add prices from config: mappings with ``model``, ``input``, ``output`` and
        optionally ``cached_input`` and ``effective_from`` (ISO date)."""
        for entry in entries:
            since = entry.get("effective_from", "2000-01-01")
            price = ModelPrice(
                model=str(entry["model"]).lower(),
                input=float(entry["input"]),
                output=float(entry["output"]),
                cached_input=(
                    None if entry.get("cached_input") is None else float(entry["cached_input"])
                ),
                effective_from=since if isinstance(since, date) else date.fromisoformat(since),
            )
            if min(price.input, price.output, price.cached_input or 0.0) < 0:
                raise ValueError("prices cannot be negative")
            self.replace(price)

    def replace(self, price: ModelPrice) -> None:
        """Add a price, overriding one of the same model and date (config beats built-in)."""
        versions = self._by_model.get(price.model, [])
        versions[:] = [p for p in versions if p.effective_from != price.effective_from]
        self._by_model[price.model] = versions
        self.add(price)

    @property
    def models(self) -> list[str]:
        return sorted(self._by_model)

    def entries(self) -> list[ModelPrice]:
        """Every price, by model then date."""
        return [p for model in self.models for p in self._by_model[model]]

    def _family(self, model: str) -> str | None:
        if model in self._resolved:
            return self._resolved[model]
        name = model.rsplit("/", 1)[-1].lower()
        best: str | None = None
        for known in self._by_model:
            if (name == known or name.startswith(known + "-")) and (
                best is None or len(known) > len(best)
            ):
                best = known
        self._resolved[model] = best
        return best

    def price(self, model: str, at: date | datetime | None = None) -> ModelPrice | None:
        family = self._family(model)
        if family is None:
            return None
        when = at.date() if isinstance(at, datetime) else at or datetime.now(UTC).date()
        current = None
        for version in self._by_model[family]:
            if version.effective_from <= when:
                current = version
        # Before the first listed date we have no price for it: unpriced, not a guess.
        return current

    def cost(
        self, model: str | None, usage: Usage, at: date | datetime | None = None
    ) -> float | None:
        """USD for ``usage`` on ``model``, or None when the model is unpriced."""
        if not model:
            return None
        price = self.price(model, at)
        return None if price is None else price.cost(usage)

    def quote(
        self, model: str | None, usage: Usage, at: date | datetime | None = None
    ) -> PriceQuote:
        """The cost with what it is based on, for events and reports."""
        price = self.price(model, at) if model else None
        if price is None:
            return PriceQuote(None, True, None, self.version)
        return PriceQuote(price.cost(usage), False, price.model, self.version)


@dataclass(frozen=True, slots=True)
class PriceQuote:
    """``cost_usd`` is None exactly when ``unpriced``: an unknown model is never $0."""

    cost_usd: float | None
    unpriced: bool
    priced_as: str | None  # the table entry used (the model's family)
    table_version: str


def _read_config(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(f"{path}: reading YAML needs PyYAML (pip install pyyaml)") from exc
        try:
            return yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: invalid YAML: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None


def load_price_table(
    source: str | os.PathLike[str] | Mapping[str, Any] | PriceTable | None = None,
) -> PriceTable:
    """The built-in table extended by ``source`` (a file path or a config dict); with no
    source, by the file named in ``VICTOR_PRICES_FILE`` if set."""
    if isinstance(source, PriceTable):
        return source
    if source is None:
        source = os.environ.get("VICTOR_PRICES_FILE") or None
        if source is None:
            return PriceTable()
        try:
            return PriceTable.from_file(source)
        except OSError as exc:
            raise ConfigError(
                f"VICTOR_PRICES_FILE={source}: cannot read it ({exc.strerror or exc})"
            ) from None
        except ValueError as exc:  # the message names the file and entry
            raise ConfigError(f"VICTOR_PRICES_FILE: {exc}") from None
    if isinstance(source, Mapping):
        return PriceTable.from_config(source)
    return PriceTable.from_file(source)


_default: PriceTable | None = None


def default_price_table() -> PriceTable:
    """The process-wide table: built-in prices plus ``VICTOR_PRICES_FILE`` if set."""
    global _default
    if _default is None:
        _default = load_price_table()
    return _default


def set_default_price_table(table: PriceTable | None) -> None:
    """Replace the process-wide table (None: rebuild it on next use)."""
    global _default
    _default = table
