"""The A/B panel: each experiment seen in the live events gets its report (the one of
``victor experiments report``) recomputed from the store, at most every ``interval``
seconds and only when new events arrived, and pushed to every page."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from victor.dashboard.hub import Hub

logger = logging.getLogger("victor.dashboard")

# The metrics the panel shows per variant, besides the primary one.
SHOWN = ("latency_ms", "cost_usd", "feedback")


def panel_of(report: Any) -> dict[str, Any]:
    """What the page shows of an :class:`~victor.experiments.ExperimentReport`."""
    data = report.to_dict()
    metrics = {m["name"]: m for m in data["metrics"]}
    primary = metrics.get(data["primary"] or "")
    variants = []
    for name, units in data["units"].items():
        row: dict[str, Any] = {"name": name, "units": units, "control": name == data["control"]}
        for metric in SHOWN:
            summary = metrics.get(metric, {}).get("variants", {}).get(name)
            row[metric] = summary["mean"] if summary else None
        if primary is not None and name in primary["variants"]:
            row["primary"] = primary["variants"][name]
            row["lift"] = primary["comparisons"].get(name)
        verdict = data["verdicts"].get(name)
        row["decision"] = verdict["decision"] if verdict else None
        row["verdict"] = verdict["line"] if verdict else None
        variants.append(row)
    return {
        "experiment": data["experiment"],
        "unit": data["unit"],
        "primary": primary["label"] if primary else None,
        "srm": data["srm"],
        "variants": variants,
        "error": None,
    }


def _panel(name: str, store: str | Path) -> dict[str, Any]:
    """One experiment's panel, or the reason it has none yet (on a worker thread: the
    report runs on an event loop of its own)."""
    from victor.errors import VictorError
    from victor.experiments import report

    try:
        return panel_of(asyncio.run(report(name, store=store)))
    except (VictorError, ValueError, LookupError, FileNotFoundError) as exc:
        return {"experiment": name, "variants": [], "error": str(exc)}


class ExperimentPanel:
    def __init__(self, hub: Hub, store: str | Path, *, interval: float = 2.0) -> None:
        self.hub, self.store, self.interval = hub, store, interval
        self._names: set[str] = set()
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        hub.listeners.append(self.observe)

    def observe(self, events: Sequence[dict[str, Any]]) -> None:
        """Note the experiments that ``events`` belong to."""
        for event in events:
            if name := event.get("experiment"):
                self._names.add(name)
                self._dirty.set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="victor-dashboard-experiments")

    async def refresh(self) -> None:
        """Recompute every experiment's panel now, on a worker thread (the statistics
        are CPU work: the event loop keeps serving chats and pages meanwhile)."""
        panels = [await asyncio.to_thread(_panel, name, self.store) for name in sorted(self._names)]
        self.hub.set_experiments(panels)

    async def _run(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self.refresh()
            except Exception:  # one failed report never stops the panel
                logger.exception("dashboard: the experiment report failed")
            await asyncio.sleep(self.interval)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
