"""Model prices: a versioned table with effective dates, so a report over last quarter
uses last quarter's prices. A model not in the table is *unpriced* (cost ``None``), never $0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

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

    def __init__(self, prices: Iterable[ModelPrice] = BUILTIN_PRICES) -> None:
        self._by_model: dict[str, list[ModelPrice]] = {}
        self._resolved: dict[str, str | None] = {}
        for price in prices:
            self.add(price)

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
            self.add(
                ModelPrice(
                    model=str(entry["model"]),
                    input=float(entry["input"]),
                    output=float(entry["output"]),
                    cached_input=(
                        None if entry.get("cached_input") is None else float(entry["cached_input"])
                    ),
                    effective_from=since if isinstance(since, date) else date.fromisoformat(since),
                )
            )

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

    def cost(self, model: str | None, usage: Usage, at: date | datetime | None = None) -> float | None:
        """USD for ``usage`` on ``model``, or None when the model is unpriced."""
        if not model:
            return None
        price = self.price(model, at)
        return None if price is None else price.cost(usage)


_default: PriceTable | None = None


def default_price_table() -> PriceTable:
    global _default
    if _default is None:
        _default = PriceTable()
    return _default
