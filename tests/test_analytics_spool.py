"""The on-disk spool: append-only segments, claims between processes, torn lines."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
import textwrap
import time

import pytest

import victor.analytics.spool as spool_module
from victor.analytics.spool import Spool, SpoolMismatchError, spool_status
from victor.protocols import AnalyticsEvent


def event(i: int, **data: object) -> AnalyticsEvent:
    return AnalyticsEvent.model_construct(type="feedback", data={"n": i, **data})


def test_append_roll_claim_read_done(tmp_path):
    spool = Spool(tmp_path / "x")
    events = [event(i) for i in range(10)]
    written, rejected = spool.append(events[:5])
    assert (written, rejected) == (5, [])
    spool.append(events[5:])
    [path] = spool.segments()
    assert spool.claim(path) is None  # still being written
    spool.roll()
    segment = spool.claim(path)
    assert segment is not None and spool.claim(path) is None  # one claim at a time
    assert [e.event_id for e in segment.read()] == [e.event_id for e in events]
    segment.done()
    assert spool.segments() == []


def test_segments_roll_by_size(tmp_path):
    spool = Spool(tmp_path / "x", segment_bytes=1000, fsync=False)
    for i in range(20):
        spool.append([event(i)])
    assert len(spool.segments()) >= 3


def test_unencodable_events_go_to_the_dead_letter_file(tmp_path):
    spool = Spool(tmp_path / "x")
    written, rejected = spool.append([event(1), event(2, bad=object())])
    assert written == 1 and len(rejected) == 1
    dead = (tmp_path / "x" / "dead" / "rejected.jsonl").read_text()
    assert "not JSON-serialisable" in json.loads(dead)["error"]


def test_failed_replay_counts_attempts_and_release_keeps_it(tmp_path):
    spool = Spool(tmp_path / "x")
    spool.write_segment([event(1)], attempts=0)
    segment = spool.claim(spool.segments()[0])
    assert segment.failed() == 1
    [path] = spool.segments()
    assert path.name.endswith(".a1.jsonl")
    segment = spool.claim(path)
    segment.release()
    assert spool.claim(path).attempts == 1


def test_bury_moves_a_segment_aside(tmp_path):
    spool = Spool(tmp_path / "x")
    spool.write_segment([event(1)], attempts=3)
    spool.claim(spool.segments()[0]).bury("keeps failing")
    assert spool.segments() == []
    assert spool.status().dead_files == 1


def test_torn_last_line_is_skipped_and_kept_in_dead(tmp_path):
    spool = Spool(tmp_path / "x")
    spool.append([event(1), event(2)])
    spool.roll()
    [path] = spool.segments()
    with open(path, "ab") as handle:
        handle.write(b'{"event_id": "abc", "ty')  # the writer was killed mid-line
    segment = spool.claim(path)
    assert len(segment.read()) == 2 and segment.corrupt_lines == 1
    segment.done()  # the readable events were delivered; the torn line is not deleted
    assert spool.segments() == []
    [kept] = (tmp_path / "x" / "dead").glob("unreadable-*")
    assert kept.read_bytes() == b'{"event_id": "abc", "ty\n'


def test_a_live_writer_in_another_process_keeps_its_segment(tmp_path):
    code = textwrap.dedent(
        f"""
        import sys, time
        from victor.analytics.spool import Spool
        from victor.protocols import AnalyticsEvent
        spool = Spool({str(tmp_path / "x")!r})
        spool.append([AnalyticsEvent.model_construct(type="feedback", data={{}})])
        print("written", flush=True)
        sys.stdin.readline()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "written"
        spool = Spool(tmp_path / "x")
        [path] = spool.segments()
        assert spool.claim(path) is None  # the other process holds it
    finally:
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(10)
    segment = spool.claim(path)  # the process ended: the lock went with it
    assert segment is not None and len(segment.read()) == 1


def test_status(tmp_path):
    Spool(tmp_path / "a").write_segment([event(1)], attempts=0)
    [status] = spool_status(tmp_path)
    assert (status.name, status.segments) == ("a", 1) and status.bytes > 0
    assert spool_status(tmp_path / "missing") == []


def test_a_replayer_never_sees_a_segment_before_its_writer_locked_it(tmp_path, monkeypatch):
    """Another process lists the directory between the segment's creation and its lock:
    it must find nothing to claim, and no event may go to an unlinked file."""
    writer, replayer = Spool(tmp_path / "x"), Spool(tmp_path / "x")
    real_lock, claimed = spool_module._lock, []

    def racing_lock(fd: int) -> bool:
        monkeypatch.setattr(spool_module, "_lock", real_lock)  # the replayer's own claims
        for path in replayer.segments():
            segment = replayer.claim(path)
            if segment is not None:
                claimed.append(path)
                segment.done()
        return real_lock(fd)

    monkeypatch.setattr(spool_module, "_lock", racing_lock)
    writer.append([event(i) for i in range(50)])  # its new segment races the replayer
    writer.append([event(i) for i in range(50, 100)])
    writer.roll()
    assert claimed == []
    [path] = writer.segments()
    assert len(replayer.claim(path).read()) == 100
    assert not list((tmp_path / "x").glob(".seg-*"))  # no hidden leftovers


def test_a_failed_lock_on_a_new_segment_is_an_error_not_ignored(tmp_path, monkeypatch):
    monkeypatch.setattr(spool_module, "_lock", lambda fd: False)
    spool = Spool(tmp_path / "x")
    with pytest.raises(OSError, match="cannot lock"):
        spool.append([event(1)])
    assert spool.segments() == []


def test_a_fresh_empty_segment_is_not_claimed(tmp_path):
    spool = Spool(tmp_path / "x")
    spool.directory.mkdir()
    path = spool.directory / "seg-00000000000000000001-1-000001.a0.jsonl"
    path.touch()
    assert spool.claim(path) is None  # maybe a writer of an older version about to fill it
    old = time.time() - 3600
    os.utime(path, (old, old))
    segment = spool.claim(path)  # an abandoned one is claimed (and done with)
    assert segment is not None and segment.read() == []


def test_disk_full_mid_write_leaves_no_fragment(tmp_path, monkeypatch):
    spool = Spool(tmp_path / "x")
    spool.append([event(i) for i in range(3)])
    real_write = os.write

    def full_disk(fd: int, data: bytes) -> int:
        real_write(fd, bytes(data[:100]))  # part of it went to disk
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool_module.os, "write", full_disk)
    with pytest.raises(OSError, match="No space"):
        spool.append([event(i) for i in range(3, 6)])
    monkeypatch.setattr(spool_module.os, "write", real_write)
    spool.append([event(i) for i in range(6, 9)])
    spool.roll()
    segments = [spool.claim(p) for p in spool.segments()]
    events = [e.data["n"] for s in segments for e in s.read()]
    assert sorted(events) == [0, 1, 2, 6, 7, 8]
    assert sum(s.corrupt_lines for s in segments) == 0


def test_when_truncation_fails_the_next_append_goes_to_a_new_segment(tmp_path, monkeypatch):
    spool = Spool(tmp_path / "x")
    spool.append([event(0)])
    real_write = os.write

    def full_disk(fd: int, data: bytes) -> int:
        real_write(fd, bytes(data[:20]))
        raise OSError(errno.ENOSPC, "No space left on device")

    def no_truncate(fd: int, size: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(spool_module.os, "write", full_disk)
    monkeypatch.setattr(spool_module.os, "ftruncate", no_truncate)
    with pytest.raises(OSError):
        spool.append([event(1)])
    monkeypatch.undo()
    spool.append([event(2)])
    spool.roll()
    segments = [spool.claim(p) for p in spool.segments()]
    assert len(segments) == 2  # the torn one was abandoned, not appended to
    assert sorted(e.data["n"] for s in segments for e in s.read()) == [0, 2]
    assert sum(s.corrupt_lines for s in segments) == 1  # kept for dead/, not glued


def test_a_spool_of_another_destination_is_neither_replayed_nor_written(tmp_path, caplog):
    mine = Spool(tmp_path / "x", destination="sqlite:/data/a.db#events")
    mine.append([event(1)])
    mine.roll()
    other = Spool(tmp_path / "x", destination="sqlite:/data/b.db#events")
    assert other.replayable() == []
    assert "not replayed here" in caplog.text
    with pytest.raises(SpoolMismatchError):
        other.append([event(2)])
    assert len(Spool(tmp_path / "x", destination="sqlite:/data/a.db#events").replayable()) == 1
    assert spool_status(tmp_path)[0].destination == "sqlite:/data/a.db#events"


def test_max_bytes_evicts_the_oldest_segments_and_counts_them(tmp_path):
    spool = Spool(tmp_path / "x", fsync=False, max_bytes=20_000)
    for i in range(200):
        spool.append([event(i, pad="x" * 200)])
    spool.roll()
    total = sum(p.stat().st_size for p in spool.segments())
    assert total <= 20_000
    kept = [e.data["n"] for p in spool.segments() for e in spool.claim(p).read()]
    assert spool.evicted_events + len(kept) == 200 and spool.evicted_segments >= 1
    assert kept == list(range(200 - len(kept), 200))  # the newest are kept


def test_durability_chain_syncs_files_and_directories(tmp_path, monkeypatch):
    synced: list[str] = []
    monkeypatch.setattr(spool_module, "fsync_dir", lambda d: synced.append(d.name))
    spool = Spool(tmp_path / "x")
    spool.append([event(1)])  # manifest + new segment, each renamed then the dir synced
    assert synced.count("x") == 2
    spool.write_segment([event(2)], attempts=1)
    assert synced.count("x") == 3
    spool.dead_letter(['{"event_id": "e"}'])
    assert "dead" in synced  # the new dead-letter file's directory
    dead = tmp_path / "x" / "dead" / "rejected.jsonl"
    assert stat.S_IMODE(dead.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "x" / "dead").stat().st_mode) == 0o700
