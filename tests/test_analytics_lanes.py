"""Delivery lanes under stress: cancellation at exit, partial refusals, memory and disk
bounds, spools per destination, immutable batches, flush results, exporter changes."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import textwrap
import threading
from collections.abc import Sequence
from pathlib import Path

import victor.analytics.spool as spool_module
from test_analytics_coordinator import Collect, Flaky, _until, coordinator, make_event
from victor.agent.coordinators.analytics_coordinator import AnalyticsCoordinator
from victor.analytics import JSONLAnalyticsExporter, SQLiteAnalyticsExporter
from victor.analytics.lanes import Lane
from victor.analytics.spool import Spool
from victor.protocols import AnalyticsEvent, ExportResult

EXIT_WITHOUT_ACLOSE = textwrap.dedent(
    """
    import asyncio, sys
    from victor.agent.coordinators.analytics_coordinator import AnalyticsCoordinator
    from victor.protocols import AnalyticsEvent

    class Down:
        name = "down"
        spool = True
        async def export(self, events):
            raise ConnectionError("down")
        async def shutdown(self):
            pass

    class Stubborn:
        '''Hangs, and turns its cancellation into an error (as some drivers do).'''
        name = "stubborn"
        spool = True
        async def export(self, events):
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                raise ConnectionError("cancelled") from None
        async def shutdown(self):
            pass

    async def main():
        coord = AnalyticsCoordinator([Down(), Stubborn()], spool_dir=sys.argv[1],
                                     flush_interval=0.01, retry_backoff=0.001)
        coord.emit(AnalyticsEvent.model_construct(type="feedback", data={"n": -1}))
        while coord.stats.exporters["down"].healthy:
            await asyncio.sleep(0.01)  # the first batch failed: the lane is down
        for chunk in range(20):
            for i in range(1000):
                coord.emit(AnalyticsEvent.model_construct(type="feedback", data={"n": i}))
            await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        # No aclose(): asyncio.run() cancels the lanes on the way out.

    asyncio.run(main())
    print("exited", flush=True)
    """
)


def test_exit_without_aclose_is_prompt_and_keeps_every_event(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", EXIT_WITHOUT_ACLOSE, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,  # a hang fails here; the run takes about a second
    )
    assert out.returncode == 0 and "exited" in out.stdout, out.stderr[-2000:]
    for name in ("down", "stubborn"):
        lines = [
            line
            for path in tmp_path.glob(f"{name}/seg-*.jsonl")
            for line in path.read_text().splitlines()
        ]
        assert len(lines) == 20_001, name


async def test_a_cancellation_that_an_export_failure_races_is_not_swallowed(tmp_path):
    """The export fails and the lane is cancelled in the same loop iteration (what
    ``asyncio.run()`` does at exit): the lane must stop, not retry forever."""

    class FailsAsItIsCancelled(Collect):
        lane: Lane

        async def export(self, events: Sequence[AnalyticsEvent]) -> ExportResult:
            assert self.lane.task is not None
            asyncio.get_running_loop().call_soon(self.lane.task.cancel)
            raise ConnectionError("down")

    sink = FailsAsItIsCancelled("x")
    coord = coordinator(tmp_path, [sink], max_retries=5, retry_backoff=0.0)
    sink.lane = lane = coord._lanes[0]
    coord.emit(make_event(1))
    coord.emit(make_event(2))
    await coord.flush(timeout=5.0)
    await asyncio.wait_for(asyncio.gather(lane.task, return_exceptions=True), 5.0)
    assert lane.task.cancelled()
    assert len(lane.leftovers()) == 2  # the batch it held is kept for the spool


async def test_one_refused_event_does_not_take_the_exporter_down(tmp_path):
    class Picky(Collect):
        async def export(self, events: Sequence[AnalyticsEvent]) -> ExportResult:
            bad = [e.event_id for e in events if e.data.get("poison")]
            good = [e for e in events if not e.data.get("poison")]
            self.batches.append(good)
            return ExportResult(
                success=not bad,
                exported_count=len(good),
                error="field too long" if bad else None,
                failed_event_ids=bad,
            )

    sink = Picky("picky")
    coord = coordinator(tmp_path, [sink], batch_size=100, max_retries=2)
    coord.emit(make_event(0, poison=True))
    for i in range(1, 100):
        coord.emit(make_event(i))
    assert not await coord.flush()  # one event was not delivered
    stats = coord.stats.exporters["picky"]
    assert stats.healthy and stats.failed_batches == 0 and stats.spooled == 0
    assert stats.exported == 99 and stats.rejected == 1 and stats.retries == 2
    for i in range(100):  # live traffic keeps going to the exporter, not to disk
        coord.emit(make_event(i))
    assert await coord.flush()
    assert len(sink.ids) == 199 and not list((tmp_path / "spool").glob("picky/seg-*"))
    await coord.aclose()
    dead = (tmp_path / "spool" / "picky" / "dead" / "rejected.jsonl").read_text()
    assert "field too long" in dead and "refused 3 time(s)" in dead


async def test_batches_are_immutable_and_shared(tmp_path):
    class Mutating(Collect):
        async def export(self, events: Sequence[AnalyticsEvent]) -> ExportResult:
            assert isinstance(events, tuple)
            events.clear()  # type: ignore[attr-defined]  # a buggy exporter
            raise AssertionError

    good = Collect("good")
    coord = coordinator(tmp_path, [Mutating("bad"), good], batch_size=10)
    for i in range(10):
        coord.emit(make_event(i))
    await coord.flush()
    assert len(good.ids) == 10
    assert "AttributeError" in coord.stats.exporters["bad"].last_error
    await coord.aclose()


async def test_flush_says_whether_everything_was_delivered(tmp_path):
    good, flaky = Collect("good"), Flaky("flaky")
    coord = coordinator(tmp_path, [good], batch_size=10)
    coord.emit(make_event(1))
    assert await coord.flush() is True
    coord.exporters.append(flaky)
    coord.emit(make_event(2))
    assert await coord.flush() is False  # spooled for the flaky one
    slow = Collect("slow", delay=60)
    coord.exporters[:] = [slow]
    coord.emit(make_event(3))
    assert await coord.flush(timeout=0.05) is False
    coord.close_timeout = 0.1
    await coord.aclose()


async def test_lanes_follow_the_exporters_by_identity(tmp_path):
    first, second = Collect("first"), Collect("second")
    coord = coordinator(tmp_path, [first])
    coord.emit(make_event(1))
    await coord.flush()
    coord.exporters[0] = second  # same length, another exporter
    assert coord.enabled
    coord.emit(make_event(2))
    await coord.flush()
    assert [e.data["n"] for b in first.batches for e in b] == [1]
    assert [e.data["n"] for b in second.batches for e in b] == [2]
    coord.exporters = []
    assert not coord.enabled
    await coord.aclose()
    assert first.closed and second.closed  # retired lanes are shut down too


async def test_spool_writer_is_bounded_when_the_disk_is_slow(tmp_path, monkeypatch):
    """The exporter is down and the disk stalls: memory stays bounded and what cannot be
    kept is counted as dropped, nothing vanishes."""
    gate = threading.Event()
    real_append = spool_module.Spool.append

    def stalled_append(self, events):  # type: ignore[no-untyped-def]
        gate.wait(30)
        return real_append(self, events)

    monkeypatch.setattr(spool_module.Spool, "append", stalled_append)
    flaky = Flaky("down", raise_=True)
    coord = coordinator(tmp_path, [flaky], batch_size=100, max_queue=1000, max_retries=0)
    coord.emit(make_event(-1))
    await asyncio.wait_for(_until(lambda: not coord.stats.exporters["down"].healthy), 5.0)
    lane = coord._lanes[0]
    peak = 0
    for _burst in range(50):
        for i in range(100):
            coord.emit(make_event(i))
        await asyncio.sleep(0)
        peak = max(peak, lane.writer.queued)
    assert peak <= 1000  # max_spool_queue defaults to max_queue
    gate.set()
    await coord.flush()
    stats = coord.stats
    mine = stats.exporters["down"]
    assert mine.dropped > 0
    assert mine.spooled + mine.dropped + mine.pending == stats.emitted == 5001
    coord.close_timeout = 0.2
    await coord.aclose()


async def test_spool_bytes_are_bounded_and_evictions_counted(tmp_path):
    flaky = Flaky("down", raise_=True)
    coord = coordinator(
        tmp_path, [flaky], batch_size=50, max_retries=0, max_spool_bytes=64_000, fsync=False
    )
    for _burst in range(40):
        for i in range(50):
            coord.emit(make_event(i, pad="x" * 100))
        await coord.flush()
    stats = coord.stats.exporters["down"]
    assert stats.evicted > 0 and stats.dropped >= stats.evicted
    size = sum(p.stat().st_size for p in (tmp_path / "spool" / "down").glob("seg-*"))
    assert size <= 64_000 + 32_000  # the bound, plus the segment being written
    coord.close_timeout = 0.2
    await coord.aclose()


class FailingSQLite(SQLiteAnalyticsExporter):
    async def export(self, events: Sequence[AnalyticsEvent]) -> ExportResult:
        raise ConnectionError("store unreachable")


async def test_spools_are_per_destination(tmp_path, caplog):
    """Two services with the same exporter class and the default spool directory, writing
    to different stores: one's backlog is never replayed into the other's store."""
    spool, a_db, b_db = tmp_path / "spool", tmp_path / "a.db", tmp_path / "b.db"
    a = AnalyticsCoordinator(
        [FailingSQLite(a_db, name="SQLiteAnalyticsExporter")], spool_dir=spool, max_retries=0
    )
    for i in range(10):
        a.emit(make_event(i))
    a.close_timeout = 0.2
    await a.aclose()
    assert a.stats.exporters["SQLiteAnalyticsExporter"].spooled == 10
    b = AnalyticsCoordinator([SQLiteAnalyticsExporter(b_db)], spool_dir=spool)
    b.emit(make_event(99))
    await b.aclose()
    assert b.stats.exporters["SQLiteAnalyticsExporter"].replayed == 0
    again = AnalyticsCoordinator([SQLiteAnalyticsExporter(a_db)], spool_dir=spool)
    await again.aclose()
    assert again.stats.exporters["SQLiteAnalyticsExporter"].replayed == 10
    names = [p.name for p in spool.iterdir()]
    assert names and all(n.startswith("SQLiteAnalyticsExporter-") for n in names)
    assert JSONLAnalyticsExporter(tmp_path / "x.jsonl").destination == (
        f"jsonl:{(tmp_path / 'x.jsonl').resolve()}"
    )


async def test_a_spool_whose_manifest_names_another_destination_is_refused(tmp_path, caplog):
    coord = coordinator(tmp_path, [SQLiteAnalyticsExporter(tmp_path / "a.db")])
    lane: Lane = coord._lanes[0]
    assert lane.spool is not None
    # Same directory name (a hash collision, a hand-made copy): another destination.
    Spool(lane.spool.directory, destination="elsewhere").write_segment([make_event(1)], 0)
    with caplog.at_level(logging.ERROR, logger="victor.analytics.spool"):
        await coord.aclose()
    assert "not replayed here" in caplog.text
    assert coord.stats.exporters["SQLiteAnalyticsExporter"].replayed == 0


def test_spool_directory_names(tmp_path):
    from victor.analytics.stats import spool_name

    a = SQLiteAnalyticsExporter(tmp_path / "a.db")
    b = SQLiteAnalyticsExporter(tmp_path / "b.db")
    assert spool_name(a, "x") != spool_name(b, "x")
    assert spool_name(a, "x") == spool_name(SQLiteAnalyticsExporter(tmp_path / "a.db"), "x")
    assert spool_name(Collect("custom"), "custom") == "custom"  # no destination: the name
    assert Path(spool_name(a, "x")).name.startswith("SQLiteAnalyticsExporter-")
