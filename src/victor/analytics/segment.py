"""A claimed spool segment, and the file-system helpers the spool and its segments share.

See :mod:`victor.analytics.spool` for the life of a segment and the ``fsync`` chain.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from victor.analytics.events import decode_line
from victor.protocols.analytics import AnalyticsEvent

if TYPE_CHECKING:
    from victor.analytics.spool import Spool

logger = logging.getLogger("victor.analytics.spool")

NAME = re.compile(r"^seg-(?P<stem>[0-9]+-[0-9]+-[0-9]+)\.a(?P<attempts>[0-9]+)\.jsonl$")


def fsync_dir(directory: Path) -> None:
    """Make renames and new names in ``directory`` durable."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class Segment:
    """A claimed segment: read it, then :meth:`done`, :meth:`failed` or :meth:`bury`."""

    def __init__(self, spool: Spool, path: Path, fd: int, attempts: int) -> None:
        self.spool = spool
        self.path = path
        self.attempts = attempts
        self._fd = fd
        self._close_lock = threading.Lock()
        self.corrupt_lines = 0
        self._corrupt: list[bytes] = []

    def read(self) -> list[AnalyticsEvent]:
        """The events of the segment; unreadable lines (a torn write) are set aside and
        moved to ``dead/`` when the segment is done."""
        with os.fdopen(os.dup(self._fd), "rb") as handle:
            handle.seek(0)
            raw = handle.read()
        events: list[AnalyticsEvent] = []
        self._corrupt = []
        for line in raw.splitlines():
            if not line.strip():
                continue
            try:
                events.append(decode_line(line))
            except Exception:
                self._corrupt.append(line)
        self.corrupt_lines = len(self._corrupt)
        if self._corrupt:
            logger.warning("spool %s: %d unreadable line(s)", self.path, self.corrupt_lines)
        return events

    def done(self) -> None:
        """Every readable event was delivered: keep the unreadable lines, remove the rest."""
        if self._corrupt:
            self.spool.keep_unreadable(self.path.name, self._corrupt)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._close()

    def failed(self) -> int:
        """Replay failed: keep the segment for later, counting the attempt."""
        self.attempts += 1
        match = NAME.match(self.path.name)
        if match:
            target = self.path.with_name(f"seg-{match['stem']}.a{self.attempts}.jsonl")
            with contextlib.suppress(OSError):
                self.path.rename(target)
                self.path = target
                if self.spool.fsync:
                    fsync_dir(target.parent)
        self._close()
        return self.attempts

    def release(self) -> None:
        """Give the segment back untouched (replay interrupted)."""
        self._close()

    def bury(self, reason: str) -> Path:
        """Give up on the segment: move it to ``dead/`` for a human to look at."""
        dead = self.spool.dead_dir()
        target = dead / self.path.name
        with contextlib.suppress(OSError):
            self.path.rename(target)
            if self.spool.fsync:
                fsync_dir(dead)
                fsync_dir(self.path.parent)
        logger.error("spool segment %s moved to %s: %s", self.path.name, dead, reason)
        self._close()
        return target

    def _close(self) -> None:
        with self._close_lock:  # release() may race a done() still running on the thread
            if self._fd >= 0:
                os.close(self._fd)  # releases the lock
                self._fd = -1
