"""Counters of the analytics pipeline: nothing is lost without being counted."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class ExporterStats:
    """Counters of one exporter (a snapshot, see ``AnalyticsCoordinator.stats``).

    ``outboxed``: events written to the outbox for it (remote exporters); ``queued``:
    events waiting in memory for it (the others); ``dropped``: events it will never see
    (its queue was full, it kept failing without an outbox, or the outbox could not be
    written); ``rejected``: events it refused for good (bad data).
    """

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
