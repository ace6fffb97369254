"""Model prices: the ``genai-prices`` table with our overrides on top. A model neither
knows is *unpriced* (cost ``None``), never $0.

``genai-prices`` (maintained by the pydantic team, used by Pydantic AI) ships its data in
the package: prices work offline, and nothing is fetched at run time (its ``UpdatePrices``
is never started). The data is large: it is loaded in a background thread when the first
:class:`PriceTable` is made, not at ``import victor``. Its own ``calc_price`` takes about
0.15 ms a call, so a model's price is looked up once a day and computed here.

Overrides (a fine-tune, a self-hosted model, a negotiated rate) come from a YAML or JSON
file or a dict (:func:`load_price_table`); the file named by ``VICTOR_PRICES_FILE``
extends :func:`default_price_table`. An override applies from its ``effective_from`` date
on; before it, the built-in price does.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from victor.errors import ConfigError
from victor.protocols.messages import Usage

Rate = float | tuple[tuple[int, float], ...]  # USD per million tokens, or (from, rate) tiers


def _rate(rate: Rate | None, input_tokens: int) -> float | None:
    """A flat rate, or the tier the prompt's size falls in (the providers' cliff model)."""
    if rate is None or isinstance(rate, float | int):
        return rate
    return [r for start, r in rate if input_tokens > start or start == 0][-1]


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per million tokens for one model from ``effective_from`` on. ``input_tokens``
    counts cached tokens too; they cost ``cached_input`` when known, else ``input``."""

    model: str
    input: Rate
    output: Rate
    cached_input: Rate | None = None
    effective_from: date = date(2000, 1, 1)

    def cost(self, usage: Usage) -> float:
        size, cached = usage.input_tokens, min(usage.cached_input_tokens, usage.input_tokens)
        inp, out = _rate(self.input, size) or 0.0, _rate(self.output, size) or 0.0
        cached_rate = _rate(self.cached_input, size)
        cached_rate = inp if cached_rate is None else cached_rate
        return ((size - cached) * inp + cached * cached_rate + usage.output_tokens * out) / 1e6


def _snapshot() -> Any:
    from genai_prices import data_snapshot

    return data_snapshot.get_snapshot()


def _from_genai(value: Any) -> Rate | None:
    if value is None or getattr(value, "tiers", None) is None:
        return None if value is None else float(value)
    return ((0, float(value.base)), *((t.start, float(t.price)) for t in value.tiers))


def builtin_price(model: str, at: date) -> ModelPrice | None:
    """The ``genai-prices`` price of ``model`` on ``at``; None when it does not know it."""
    try:
        _, info = _snapshot().find_provider_model(model, None, None, None)
    except LookupError:
        return None
    prices = info.get_prices(datetime.combine(at, time(12), UTC))
    inp, out = _from_genai(prices.input_mtok), _from_genai(prices.output_mtok)
    cached = _from_genai(prices.cache_read_mtok)
    return None if inp is None or out is None else ModelPrice(info.id, inp, out, cached)


class PriceTable:
    """Looks up a model's price on a date: an override first, then ``genai-prices``.

    Overrides resolve dated snapshots to their family by longest prefix
    (``acme-ft-v3`` -> ``acme-ft``); ``provider/model`` names drop the provider.
    """

    def __init__(
        self, prices: Iterable[ModelPrice] = (), *, builtin: bool = True, version: str | None = None
    ) -> None:
        self.builtin = builtin
        builtin_version = f"genai-prices {package_version('genai-prices')}" if builtin else None
        self.version = version or builtin_version or "overrides"
        self._by_model: dict[str, list[ModelPrice]] = {}
        self._cache: dict[tuple[str, date], ModelPrice | None] = {}
        for price in prices:
            self.replace(price)
        if builtin:  # the table is big: load it now, off the caller's thread
            threading.Thread(target=_snapshot, name="victor-prices", daemon=True).start()

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any] | Iterable[Mapping[str, Any]],
        *,
        builtin: bool = True,
        source: str = "config",
    ) -> PriceTable:
        """Overrides from ``{"version": ..., "prices": [{model, input, output, ...}]}``,
        ``{"models": {name: {input, output, ...} or [dated entries]}}`` or a bare list;
        errors name the source and the entry."""
        table, entries = cls(builtin=builtin), []
        if isinstance(config, Mapping):
            if "version" in config:
                table.version = f"{table.version} + {config['version']}"
            entries.extend(config.get("prices") or [])
            for model, spec in (config.get("models") or {}).items():
                entries.extend(
                    {"model": model, **s} for s in (spec if isinstance(spec, list) else [spec])
                )
        else:
            entries.extend(config)
        for index, entry in enumerate(entries):
            try:
                table.replace(_entry(entry))
            except (KeyError, TypeError, ValueError) as exc:
                what = entry.get("model", "?") if isinstance(entry, Mapping) else entry
                raise ValueError(f"{source}: price entry {index} ({what!r}): {exc!r}") from None
        return table

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, builtin: bool = True) -> PriceTable:
        """Overrides from a YAML (``.yaml``/``.yml``) or JSON file; see :meth:`from_config`."""
        return cls.from_config(_read_config(Path(path)), builtin=builtin, source=str(path))

    def replace(self, price: ModelPrice) -> None:
        """Add an override, replacing one of the same model and date."""
        same = self._by_model.get(price.model, [])
        versions = [p for p in same if p.effective_from != price.effective_from] + [price]
        self._by_model[price.model] = sorted(versions, key=lambda p: p.effective_from)
        self._cache.clear()

    @property
    def models(self) -> list[str]:
        """The models with an override."""
        return sorted(self._by_model)

    def entries(self) -> list[ModelPrice]:
        """Every override, by model then date."""
        return [p for model in self.models for p in self._by_model[model]]

    def price(self, model: str, at: date | datetime | None = None) -> ModelPrice | None:
        name = model.rsplit("/", 1)[-1].lower()
        when = at.date() if isinstance(at, datetime) else at or datetime.now(UTC).date()
        key = (name, when)
        if key not in self._cache:
            known = [k for k in self._by_model if name == k or name.startswith(k + "-")]
            family = max(known, key=len, default="")
            dated = [p for p in self._by_model.get(family, []) if p.effective_from <= when]
            found = dated[-1] if dated else builtin_price(name, when) if self.builtin else None
            self._cache[key] = found
        return self._cache[key]

    def cost(
        self, model: str | None, usage: Usage, at: date | datetime | None = None
    ) -> float | None:
        """USD for ``usage`` on ``model``, or None when the model is unpriced."""
        price = self.price(model, at) if model else None
        return None if price is None else price.cost(usage)


def _entry(entry: Mapping[str, Any]) -> ModelPrice:
    since, cached = entry.get("effective_from", "2000-01-01"), entry.get("cached_input")
    price = ModelPrice(
        model=str(entry["model"]).lower(),
        input=float(entry["input"]),
        output=float(entry["output"]),
        cached_input=None if cached is None else float(cached),
        effective_from=since if isinstance(since, date) else date.fromisoformat(since),
    )
    if min(price.input, price.output, price.cached_input or 0.0) < 0:  # type: ignore[type-var]
        raise ValueError("prices cannot be negative")
    return price


def _read_config(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

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
    """The built-in table with the overrides of ``source`` (a file path or a config dict);
    with no source, those of the file named in ``VICTOR_PRICES_FILE`` if set."""
    if isinstance(source, PriceTable):
        return source
    if isinstance(source, Mapping):
        return PriceTable.from_config(source)
    if source is not None:
        return PriceTable.from_file(source)
    path = os.environ.get("VICTOR_PRICES_FILE")
    try:
        return PriceTable.from_file(path) if path else PriceTable()
    except OSError as exc:
        reason = exc.strerror or exc
        raise ConfigError(f"VICTOR_PRICES_FILE={path}: cannot read it ({reason})") from None
    except ValueError as exc:  # the message names the file and entry
        raise ConfigError(f"VICTOR_PRICES_FILE: {exc}") from None


_default: PriceTable | None = None
_default_lock = threading.Lock()


def default_price_table() -> PriceTable:
    """The process-wide table: built-in prices plus ``VICTOR_PRICES_FILE`` if set."""
    global _default
    with _default_lock:
        if _default is None:
            _default = load_price_table()
        return _default


def set_default_price_table(table: PriceTable | None) -> None:
    """Replace the process-wide table (None: rebuild it on next use)."""
    global _default
    _default = table
