"""Counters of the analytics pipeline: nothing is lost without being counted."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class ExporterStats:
    """Counters of one exporter (a snapshot, see ``AnalyticsCoordinator.stats``).
    ``outboxed``: written to the outbox for it (remote exporters); ``queued``: waiting in
    memory for it (local ones); ``dropped``: it will never see them (a full queue, failing
    retries, an outbox that could not be written); ``rejected``: refused for good."""

    name: str
    exported: int = 0
    rejected: int = 0
    dropped: int = 0
    outboxed: int = 0
    queued: int = 0
    retries: int = 0
    failed_batches: int = 0
    healthy: bool = True
    last_error: str | None = None


@dataclass(slots=True)
class AnalyticsStats:
    """A snapshot of the coordinator: events emitted, waiting in memory, dropped."""

    emitted: int = 0
    queued: int = 0
    dropped: int = 0  # in total: at emit (queue full, closed) and per exporter
    exporters: dict[str, ExporterStats] = field(default_factory=dict)
