"""An on-disk spool: events that could not be delivered yet, kept until they are.

One directory per exporter holds append-only JSON-lines *segments*. The writer holds an
exclusive ``flock`` on the segment it appends to; a segment nobody holds (closed, or left by
a killed process) can be *claimed* by any process for replay, which deletes it once every
event in it is delivered. Replaying twice is harmless: stores ignore a known ``event_id``.
A segment whose replay failed is renamed with its attempt count, so a segment that keeps
failing while the exporter works can be moved to ``dead/`` instead of blocking the spool.

Everything here is blocking file I/O: the coordinator calls it from its own thread.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from victor.analytics.events import (
    EventEncodeError,
    decode_line,
    encode_line,
    safe_repr_line,
    split_encoded,
)
from victor.protocols.analytics import AnalyticsEvent

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: one process per spool directory
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^seg-(?P<stem>[0-9]+-[0-9]+-[0-9]+)\.a(?P<attempts>[0-9]+)\.jsonl$")
_counter = itertools.count()


def _lock(fd: int) -> bool:
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


@dataclass(slots=True)
class SpoolStatus:
    """What is waiting in one exporter's spool directory."""

    name: str
    segments: int
    bytes: int
    dead_files: int


class Segment:
    """A claimed segment: read it, then :meth:`done`, :meth:`failed` or :meth:`bury`."""

    def __init__(self, path: Path, fd: int, attempts: int) -> None:
        self.path = path
        self.attempts = attempts
        self._fd = fd
        self.corrupt_lines = 0

    def read(self) -> list[AnalyticsEvent]:
        """The events of the segment; a torn last line (a killed writer) is skipped."""
        with os.fdopen(os.dup(self._fd), "rb") as handle:
            handle.seek(0)
            raw = handle.read()
        events: list[AnalyticsEvent] = []
        for line in raw.splitlines():
            if not line.strip():
                continue
            try:
                events.append(decode_line(line))
            except Exception:
                self.corrupt_lines += 1
        if self.corrupt_lines:
            logger.warning("spool %s: skipped %d unreadable line(s)", self.path, self.corrupt_lines)
        return events

    def done(self) -> None:
        """Every event was delivered: remove the segment."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._close()

    def failed(self) -> int:
        """Replay failed: keep the segment for later, counting the attempt."""
        self.attempts += 1
        match = _NAME.match(self.path.name)
        if match:
            target = self.path.with_name(f"seg-{match['stem']}.a{self.attempts}.jsonl")
            with contextlib.suppress(OSError):
                self.path.rename(target)
                self.path = target
        self._close()
        return self.attempts

    def release(self) -> None:
        """Give the segment back untouched (replay interrupted)."""
        self._close()

    def bury(self, reason: str) -> Path:
        """Give up on the segment: move it to ``dead/`` for a human to look at."""
        dead = self.path.parent / "dead"
        dead.mkdir(exist_ok=True)
        target = dead / self.path.name
        with contextlib.suppress(OSError):
            self.path.rename(target)
        logger.error("spool segment %s moved to %s: %s", self.path.name, dead, reason)
        self._close()
        return target

    def _close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # releases the lock
            self._fd = -1


class Spool:
    """The spool directory of one exporter."""

    def __init__(
        self, directory: str | os.PathLike[str], *, segment_bytes: int = 8 << 20, fsync: bool = True
    ) -> None:
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self._lock = threading.Lock()
        self._fd = -1
        self._path: Path | None = None
        self._size = 0

    # -- writing ---------------------------------------------------------------------

    def append(self, events: Sequence[Any]) -> tuple[int, list[EventEncodeError]]:
        """Write events durably (``fsync`` per call unless disabled). Events that cannot be
        encoded are dead-lettered and returned, so the caller can report them."""
        lines, rejected = split_encoded(events, encode_line)
        if rejected:
            self.dead_letter([safe_repr_line(_find(events, e.event_id), str(e)) for e in rejected])
        if not lines:
            return 0, rejected
        payload = ("\n".join(lines) + "\n").encode("utf-8")
        with self._lock:
            if self._fd < 0:
                self._open_segment()
            view = memoryview(payload)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            if self.fsync:
                os.fsync(self._fd)
            self._size += len(payload)
            if self._size >= self.segment_bytes:
                self._roll_locked()
        return len(lines), rejected

    def _open_segment(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"seg-{time.time_ns():020d}-{os.getpid()}-{next(_counter):06d}.a0.jsonl"
        path = self.directory / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        _lock(fd)
        if self.fsync:  # make the new directory entry durable too
            with contextlib.suppress(OSError):
                dir_fd = os.open(self.directory, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
        self._fd, self._path, self._size = fd, path, 0

    def roll(self) -> None:
        """Close the segment being written, so it can be replayed."""
        with self._lock:
            self._roll_locked()

    def _roll_locked(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self._fd, self._path, self._size = -1, None, 0

    close = roll

    def write_segment(self, events: Sequence[AnalyticsEvent], attempts: int) -> None:
        """Write a closed segment at once (what is left of a partly replayed one)."""
        lines, _ = split_encoded(events, encode_line)
        if not lines:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"seg-{time.time_ns():020d}-{os.getpid()}-{next(_counter):06d}.a{attempts}.jsonl"
        tmp = self.directory / f".{name}.tmp"
        with open(tmp, "wb") as handle:
            handle.write(("\n".join(lines) + "\n").encode("utf-8"))
            handle.flush()
            if self.fsync:
                os.fsync(handle.fileno())
        tmp.rename(self.directory / name)  # atomic: a reader never sees half of it

    def dead_letter(self, lines: Iterable[str]) -> None:
        """Append refused events (with the reason) to ``dead/rejected.jsonl``."""
        lines = list(lines)
        if not lines:
            return
        dead = self.directory / "dead"
        dead.mkdir(parents=True, exist_ok=True)
        with open(dead / "rejected.jsonl", "a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")

    # -- reading ---------------------------------------------------------------------

    def segments(self) -> list[Path]:
        """Segment files, oldest first (some may be held by a live writer)."""
        try:
            entries = [p for p in self.directory.iterdir() if _NAME.match(p.name)]
        except FileNotFoundError:
            return []
        return sorted(entries, key=lambda p: p.name)

    def has_segments(self) -> bool:
        return bool(self.segments())

    def claim(self, path: Path) -> Segment | None:
        """Take a segment for replay, or None if a writer or another replayer holds it."""
        with self._lock:
            if path == self._path:
                return None
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            if not _lock(fd) or os.fstat(fd).st_nlink == 0:
                raise FileNotFoundError
            if os.stat(path).st_ino != os.fstat(fd).st_ino:  # renamed under us
                raise FileNotFoundError
        except OSError:
            os.close(fd)
            return None
        match = _NAME.match(path.name)
        return Segment(path, fd, int(match["attempts"]) if match else 0)

    def status(self) -> SpoolStatus:
        segments = self.segments()
        size = 0
        for path in segments:
            with contextlib.suppress(OSError):
                size += path.stat().st_size
        dead_dir = self.directory / "dead"
        dead = len(list(dead_dir.iterdir())) if dead_dir.is_dir() else 0
        return SpoolStatus(self.directory.name, len(segments), size, dead)


def _find(events: Sequence[Any], event_id: str) -> Any:
    for event in events:
        if getattr(event, "event_id", None) == event_id:
            return event
    return next(iter(events), None)


def spool_status(root: str | os.PathLike[str]) -> list[SpoolStatus]:
    """The status of every exporter's spool under ``root`` (for ``victor analytics spool``)."""
    base = Path(root)
    if not base.is_dir():
        return []
    return [Spool(d).status() for d in sorted(base.iterdir()) if d.is_dir()]
