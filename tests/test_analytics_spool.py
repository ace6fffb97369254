"""The on-disk spool: append-only segments, claims between processes, torn lines."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from victor.analytics.spool import Spool, spool_status
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


def test_torn_last_line_is_skipped(tmp_path):
    spool = Spool(tmp_path / "x")
    spool.append([event(1), event(2)])
    spool.roll()
    [path] = spool.segments()
    with open(path, "ab") as handle:
        handle.write(b'{"event_id": "abc", "ty')  # the writer was killed mid-line
    segment = spool.claim(path)
    assert len(segment.read()) == 2 and segment.corrupt_lines == 1


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
