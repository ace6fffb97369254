"""In-process fan-out: every batch of events becomes one frame, encoded once, offered to
every connected client's bounded queue.

Frames are numbered (``seq``) and the last ``replay`` of them are kept, so a client that
reconnects with its last sequence number gets what it missed. A client whose queue is
full is dropped at once (it reconnects and resumes): publishing never waits for a client,
so a slow browser stalls neither the others nor the chat loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from victor.dashboard.protocol import BATCH, EXPERIMENTS, IN_PROCESS, STATUS

logger = logging.getLogger("victor.dashboard")


def encode(message: dict[str, Any]) -> str:
    """A message as JSON text (anything orjson cannot encode becomes its ``str``)."""
    return orjson.dumps(message, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


class Subscriber:
    """One client's queue of frames. ``on_drop`` runs once when the hub drops it."""

    __slots__ = ("dropped", "on_drop", "queue")

    def __init__(self, size: int, on_drop: Callable[[], None] | None) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue(size)
        self.dropped = False
        self.on_drop = on_drop

    def offer(self, frame: str) -> bool:
        """Queue a frame; False when the queue is full."""
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            return False
        return True


class Hub:
    """Numbers batches, keeps the recent ones, and fans them out to subscribers.

    Call its methods on the event loop's thread. ``queue_size`` frames may wait per
    client; ``replay`` frames are kept for reconnecting clients.
    """

    def __init__(self, *, queue_size: int = 512, replay: int = 2048) -> None:
        self.epoch = uuid.uuid4().hex  # sequence numbers are this hub's
        self.seq = 0
        self.queue_size = queue_size
        self._ring: deque[tuple[int, float, str]] = deque(maxlen=replay)
        self._subscribers: set[Subscriber] = set()
        self.status: dict[str, Any] = {"type": STATUS, "fanout": IN_PROCESS, "detail": ""}
        self.experiments: dict[str, Any] | None = None  # the latest experiments frame
        self.listeners: list[Callable[[Sequence[dict[str, Any]]], None]] = []
        self.dropped = 0  # clients dropped for falling behind
        self.published = 0  # events

    @property
    def clients(self) -> int:
        return len(self._subscribers)

    def publish(self, events: Sequence[dict[str, Any]]) -> int:
        """Fan a batch of wire events out; returns its sequence number (0: empty)."""
        if not events:
            return 0
        self.seq += 1
        frame = encode({"type": BATCH, "seq": self.seq, "events": list(events)})
        self._ring.append((self.seq, time.monotonic(), frame))
        self.published += len(events)
        self._broadcast(frame)
        for listener in self.listeners:
            listener(events)
        return self.seq

    def set_status(self, fanout: str, detail: str = "") -> None:
        """The fan-out's state (in-process, Redis, Redis down), shown on every page."""
        if (fanout, detail) == (self.status["fanout"], self.status["detail"]):
            return
        self.status = {"type": STATUS, "fanout": fanout, "detail": detail}
        self._broadcast(encode(self.status))

    def set_experiments(self, reports: list[dict[str, Any]]) -> None:
        self.experiments = {"type": EXPERIMENTS, "experiments": reports}
        self._broadcast(encode(self.experiments))

    def subscribe(
        self,
        *,
        epoch: str | None = None,
        last_seq: int | None = None,
        on_drop: Callable[[], None] | None = None,
    ) -> tuple[Subscriber, bool]:
        """A new subscriber, and whether it resumes: with this hub's ``epoch`` and a
        ``last_seq`` whose successors are all still kept, its queue starts with the frames
        it missed; otherwise it needs a snapshot."""
        sub = Subscriber(self.queue_size, on_drop)
        resumed = False
        if epoch == self.epoch and isinstance(last_seq, int) and 0 <= last_seq <= self.seq:
            oldest = self._ring[0][0] if self._ring else self.seq + 1
            missed = [frame for seq, _, frame in self._ring if seq > last_seq]
            if last_seq + 1 >= oldest and len(missed) <= self.queue_size:
                for frame in missed:
                    sub.offer(frame)
                resumed = True
        self._subscribers.add(sub)
        return sub, resumed

    def recent(self, seconds: float) -> list[str]:
        """The frames of the last ``seconds``, oldest first: sent after a snapshot, as the
        store may not hold their events yet (the page drops events it already has)."""
        since = time.monotonic() - seconds
        return [frame for _, at, frame in self._ring if at >= since]

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subscribers.discard(sub)

    def _broadcast(self, frame: str) -> None:
        for sub in [s for s in self._subscribers if not s.offer(frame)]:
            self._drop(sub)

    def _drop(self, sub: Subscriber) -> None:
        self._subscribers.discard(sub)
        sub.dropped = True
        self.dropped += 1
        logger.info("dashboard client dropped: it fell %d frames behind", self.queue_size)
        if sub.on_drop is not None:
            sub.on_drop()
