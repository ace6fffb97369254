"""An on-disk spool: events that could not be delivered yet, kept until they are.

One directory per exporter *destination* holds append-only JSON-lines *segments* and a
``manifest.json`` naming the destination, so a spool is never replayed into another
database. The writer creates each segment under a hidden name, takes an exclusive
``flock`` on it and only then renames it into view: a segment anyone can see is held by its
writer until closed. A segment nobody holds (closed, or left by a killed process) can be
*claimed* by any process for replay, which deletes it once every event in it is delivered.
Replaying twice is harmless: stores ignore a known ``event_id``. A segment whose replay
failed is renamed with its attempt count, so one that keeps failing while the exporter
works can be moved to ``dead/`` instead of blocking the spool. ``max_bytes`` bounds the
directory: the oldest segments are evicted, and counted, when it is exceeded.

Durability (with ``fsync=True``, the default), the chain that makes "spooled" mean "on
disk":

* ``append`` writes and ``fsync``s the segment before it returns; on any error the segment
  is truncated back to its last good size (or abandoned for a fresh one), so a torn
  fragment is never glued to the next append;
* a new segment, a rewritten remainder (``write_segment``), the manifest, a renamed or
  buried segment: each file is ``fsync``ed, renamed, then its directory is ``fsync``ed, so
  the name survives a power cut; a remainder is durable before the original is deleted;
* dead letters are appended to a ``0600`` file and ``fsync``ed;
* deletions are not synced: a lost unlink only means a harmless second replay.

Everything here is blocking file I/O: the coordinator calls it from its own thread.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from victor.analytics.events import (
    EventEncodeError,
    encode_line,
    safe_repr_line,
    split_encoded,
)
from victor.analytics.segment import NAME as _NAME
from victor.analytics.segment import Segment, fsync_dir
from victor.protocols.analytics import AnalyticsEvent

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: one process per spool directory
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

_counter = itertools.count()
MANIFEST = "manifest.json"
#: An empty segment younger than this may be one a writer is about to fill: left alone.
FRESH_EMPTY_SECONDS = 10.0


class SpoolMismatchError(OSError):
    """The directory is the spool of another destination: not written, not replayed."""


def _lock(fd: int) -> bool:
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _segment_name(attempts: int) -> str:
    return f"seg-{time.time_ns():020d}-{os.getpid()}-{next(_counter):06d}.a{attempts}.jsonl"


@dataclass(slots=True)
class SpoolStatus:
    """What is waiting in one exporter's spool directory."""

    name: str
    segments: int
    bytes: int
    dead_files: int
    destination: str | None = None


class Spool:
    """The spool directory of one exporter destination."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        segment_bytes: int = 8 << 20,
        fsync: bool = True,
        max_bytes: int | None = None,
        destination: str | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        # Several segments fit under the bound, so evicting closed ones can honour it.
        limit = segment_bytes if max_bytes is None else max(1, min(segment_bytes, max_bytes // 4))
        self.segment_bytes = limit
        self.fsync = fsync
        self.destination = destination
        self.evicted_events = 0
        self.evicted_segments = 0
        self._lock = threading.Lock()
        self._fd = -1
        self._path: Path | None = None
        self._size = 0
        self._total: int | None = None  # bytes in segments, known after the first scan
        self._manifest_ok: bool | None = None

    # -- the manifest -------------------------------------------------------------------

    def check_manifest(self) -> bool:
        """True when the directory belongs to this destination (claiming it if new)."""
        if self._manifest_ok is not None:
            return self._manifest_ok
        path = self.directory / MANIFEST
        found: Any = None
        for _ in range(3):
            try:
                found = json.loads(path.read_text(encoding="utf-8")).get("destination")
                break
            except FileNotFoundError:
                if self._create_manifest(path):
                    self._manifest_ok = True
                    return True
            except (OSError, ValueError, AttributeError) as exc:
                logger.error(
                    "spool %s: unreadable %s (%s): not used", self.directory, MANIFEST, exc
                )
                self._manifest_ok = False
                return False
        self._manifest_ok = found == self.destination
        if not self._manifest_ok:
            logger.error(
                "spool %s holds events for %r, not %r: not replayed here, not written to",
                self.directory,
                found,
                self.destination,
            )
        return self._manifest_ok

    def _create_manifest(self, path: Path) -> bool:
        """Write the manifest unless another process just did (then False)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"version": 1, "destination": self.destination}) + "\n"
        tmp = self.directory / f".{MANIFEST}.{os.getpid()}.{next(_counter)}.tmp"
        self._write_durably(tmp, body.encode("utf-8"))
        try:
            os.link(tmp, path)  # fails if it exists: the first process's manifest stands
        except FileExistsError:
            return False
        finally:
            tmp.unlink()
        if self.fsync:
            fsync_dir(self.directory)
        return True

    def _write_durably(self, path: Path, payload: bytes) -> None:
        """A whole small file, private (``0600``), synced before it is renamed into view."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            if self.fsync:
                os.fsync(handle.fileno())

    # -- writing ------------------------------------------------------------------------

    def append(self, events: Sequence[Any]) -> tuple[int, list[EventEncodeError]]:
        """Write events durably (``fsync`` per call unless disabled). Events that cannot be
        encoded are dead-lettered and returned, so the caller can report them. On an error
        nothing of this call stays in the segment."""
        lines, rejected = split_encoded(events, encode_line)
        if rejected:
            self.dead_letter([safe_repr_line(_find(events, e.event_id), str(e)) for e in rejected])
        if not lines:
            return 0, rejected
        payload = ("\n".join(lines) + "\n").encode("utf-8")
        with self._lock:
            if not self.check_manifest():
                raise SpoolMismatchError(f"{self.directory} is the spool of another destination")
            if self._fd >= 0 and os.fstat(self._fd).st_nlink == 0:
                logger.error("spool %s: segment deleted under the writer", self._path)
                self._roll_locked()
            if self._fd < 0:
                self._open_segment()
            good = self._size
            try:
                view = memoryview(payload)
                while view:
                    view = view[os.write(self._fd, view) :]
                if self.fsync:
                    os.fsync(self._fd)
            except BaseException:
                self._undo(good)
                raise
            self._size += len(payload)
            if self._total is not None:
                self._total += len(payload)
            if self._size >= self.segment_bytes:
                self._roll_locked()
        if self.max_bytes is not None and (self._total is None or self._total > self.max_bytes):
            self._enforce_bound()
        return len(lines), rejected

    def _undo(self, good: int) -> None:
        """A failed write (disk full): cut the torn fragment, or leave the segment."""
        try:
            os.ftruncate(self._fd, good)
            if self.fsync:
                os.fsync(self._fd)
        except OSError:
            logger.error("spool %s: cannot truncate a failed write: new segment", self._path)
            self._roll_locked()

    def _open_segment(self) -> None:
        """Create, lock, then show a segment: no replayer can see it unlocked."""
        self.directory.mkdir(parents=True, exist_ok=True)
        name = _segment_name(0)
        tmp, path = self.directory / f".{name}.tmp", self.directory / name
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        try:
            if not _lock(fd):
                raise OSError(f"cannot lock new spool segment {tmp}")
            os.rename(tmp, path)
            if os.fstat(fd).st_nlink != 1:
                raise OSError(f"new spool segment {path} was unlinked")
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        if self.fsync:  # make the new directory entry durable too
            fsync_dir(self.directory)
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
        if not self.check_manifest():
            raise SpoolMismatchError(f"{self.directory} is the spool of another destination")
        self.directory.mkdir(parents=True, exist_ok=True)
        name = _segment_name(attempts)
        tmp = self.directory / f".{name}.tmp"
        payload = ("\n".join(lines) + "\n").encode("utf-8")
        self._write_durably(tmp, payload)
        tmp.rename(self.directory / name)  # atomic: a reader never sees half of it
        if self.fsync:
            fsync_dir(self.directory)
        if self._total is not None:
            self._total += len(payload)

    def dead_dir(self) -> Path:
        dead = self.directory / "dead"
        if not dead.is_dir():
            dead.mkdir(parents=True, exist_ok=True, mode=0o700)
            if self.fsync:
                fsync_dir(self.directory)
        return dead

    def dead_letter(self, lines: Iterable[str]) -> None:
        """Append refused events (with the reason) to ``dead/rejected.jsonl``."""
        self._append_dead("rejected.jsonl", [line.encode("utf-8") for line in lines])

    def keep_unreadable(self, segment: str, lines: list[bytes]) -> None:
        """Unreadable lines of a replayed segment, kept for a human instead of deleted."""
        self._append_dead(f"unreadable-{segment}", lines)

    def _append_dead(self, name: str, lines: list[bytes]) -> None:
        if not lines:
            return
        dead = self.dead_dir()
        path = dead / name
        new = not path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            view = memoryview(b"\n".join(lines) + b"\n")
            while view:
                view = view[os.write(fd, view) :]
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        if new and self.fsync:
            fsync_dir(dead)

    # -- the bound ----------------------------------------------------------------------

    def _enforce_bound(self) -> None:
        """Evict the oldest closed segments while the spool is over ``max_bytes``."""
        assert self.max_bytes is not None
        sizes = []
        for path in self.segments():
            with contextlib.suppress(OSError):
                sizes.append((path, path.stat().st_size))
        total = sum(size for _, size in sizes)
        for path, size in sizes:
            if total <= self.max_bytes:
                break
            segment = self.claim(path)
            if segment is None:  # being written or replayed
                continue
            try:
                with open(path, "rb") as handle:
                    events = handle.read().count(b"\n")
                path.unlink()
            except OSError:
                segment.release()
                continue
            segment.release()
            total -= size
            self.evicted_events += events
            self.evicted_segments += 1
            logger.error(
                "spool %s over %d bytes: evicted %s (%d events; %d evicted so far)",
                self.directory,
                self.max_bytes,
                path.name,
                events,
                self.evicted_events,
            )
        self._total = total

    # -- reading ------------------------------------------------------------------------

    def segments(self) -> list[Path]:
        """Segment files, oldest first (some may be held by a live writer)."""
        try:
            entries = [p for p in self.directory.iterdir() if _NAME.match(p.name)]
        except FileNotFoundError:
            return []
        return sorted(entries, key=lambda p: p.name)

    def replayable(self) -> list[Path]:
        """Segments to replay: none when the directory belongs to another destination."""
        if not self.directory.is_dir() or not self.check_manifest():
            return []
        return self.segments()

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
            if not _lock(fd):
                raise FileNotFoundError
            stat = os.fstat(fd)
            if stat.st_nlink == 0 or os.stat(path).st_ino != stat.st_ino:  # gone or renamed
                raise FileNotFoundError
            if stat.st_size == 0 and time.time() - stat.st_mtime < FRESH_EMPTY_SECONDS:
                raise FileNotFoundError  # a writer of an older version may be about to fill it
        except OSError:
            os.close(fd)
            return None
        match = _NAME.match(path.name)
        return Segment(self, path, fd, int(match["attempts"]) if match else 0)

    def status(self) -> SpoolStatus:
        segments = self.segments()
        size = 0
        for path in segments:
            with contextlib.suppress(OSError):
                size += path.stat().st_size
        dead_dir = self.directory / "dead"
        dead = len(list(dead_dir.iterdir())) if dead_dir.is_dir() else 0
        destination = None
        with contextlib.suppress(OSError, ValueError, AttributeError):
            text = (self.directory / MANIFEST).read_text(encoding="utf-8")
            destination = json.loads(text).get("destination")
        return SpoolStatus(self.directory.name, len(segments), size, dead, destination)


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
