"""The threads sync tools run in: one per call in flight, reused, written off when stuck.

Python cannot stop a thread, so a sync call its caller stopped waiting for (it overran its
timeout, or the turn was cancelled) keeps its thread until it returns. Such a thread is
*written off*: it no longer counts as capacity, the next call gets another thread, and it
ends once its call returns. ``stuck`` counts them; past ``max_stuck`` new calls are refused
(:class:`ToolThreadsExhausted`) rather than piling up threads without end.

There is no shared pool size to exhaust: a call takes an idle thread or starts one, so
how many sync calls run at once is bounded by the callers (the executor's
``max_parallel`` per model response), never by other callers' stuck calls. Up to
``max_idle`` threads wait for work between calls. Threads are daemons: a stuck one never
holds up the exit of the process.

The hand-off. Most sync tools answer in microseconds, and for them the usual round trip
(the event loop woken through its self-pipe, the GIL passed back and forth, on a loaded
machine a thread to schedule on a busy core) costs far more than the call. So the event
loop thread waits for a call synchronously up to ``quick`` (0.2 ms): the GIL is free for
the tool at once and the answer wakes the loop thread directly. A call not done by then is
awaited the ordinary way (``call_soon_threadsafe``), and so are the next calls of its
function until one of them answers within ``quick`` again: the loop is never held for
more than ``quick`` by a call, and not at all by a tool known to be slow.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

# What a call ended with: its return value, or the exception it raised (then the value is None).
Outcome = tuple[Any, BaseException | None]

_RUNNING, _DONE, _WRITTEN_OFF = "running", "done", "written off"


class ToolThreadsExhausted(RuntimeError):
    """A new sync call is not started: too many written-off threads are still running, or
    the system refuses another thread."""


class _Call:
    """One sync call handed to a thread. Its thread releases ``answered`` when done, or
    answers ``future`` once the caller stopped waiting synchronously and set one."""

    __slots__ = ("answered", "arguments", "fn", "future", "loop", "outcome", "state")

    def __init__(self, fn: Callable[..., Any], arguments: dict[str, Any]) -> None:
        self.fn = fn
        self.arguments = arguments
        self.state = _RUNNING
        self.outcome: Outcome = (None, None)
        self.answered = threading.Lock()
        self.answered.acquire()
        self.future: asyncio.Future[Outcome] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None


def _deliver(future: asyncio.Future[Outcome], outcome: Outcome) -> None:
    if not future.done():  # the caller may have stopped waiting meanwhile
        future.set_result(outcome)


class ToolThreads:
    """Runs sync functions in threads of their own, for an event loop to await."""

    def __init__(self, *, max_idle: int = 16, max_stuck: int = 32, quick: float = 0.0002) -> None:
        self.max_idle = max_idle
        self.max_stuck = max_stuck
        self.quick = quick
        self.stuck = 0
        self._idle: list[queue.SimpleQueue[_Call | None]] = []
        self._slow: set[int] = set()  # ids of the functions slower than ``quick`` last time
        self._lock = threading.Lock()  # the calls' state, ``stuck``, ``_idle``, ``_slow``
        self._closed = False

    async def run(self, fn: Callable[..., Any], arguments: dict[str, Any]) -> Outcome:
        """``fn(**arguments)`` in a thread. Cancelled, it writes the thread off."""
        if self.stuck >= self.max_stuck:
            raise ToolThreadsExhausted(
                f"{self.stuck} sync tool threads still run calls that overran their timeout "
                f"or whose turn was cancelled (the limit is {self.max_stuck}); "
                "they must end first"
            )
        call = _Call(fn, arguments)
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is None:
            inbox = queue.SimpleQueue()
            try:
                threading.Thread(
                    target=self._serve, args=(inbox,), name="victor-tool", daemon=True
                ).start()
            except RuntimeError as exc:  # the system's limit on threads
                raise ToolThreadsExhausted(f"cannot start a thread: {exc}") from exc
        inbox.put(call)
        if id(fn) not in self._slow and call.answered.acquire(timeout=self.quick):
            return call.outcome
        loop = asyncio.get_running_loop()
        with self._lock:
            if call.state is _DONE:  # done since the wait above ended
                return call.outcome
            call.loop, call.future = loop, loop.create_future()
            if len(self._slow) < 10_000:  # bounded, whatever tools come and go
                self._slow.add(id(fn))  # until a call of it answers in time again
        try:
            return await call.future
        except asyncio.CancelledError:  # the caller's deadline or its own cancellation
            with self._lock:
                if call.state is _RUNNING:
                    call.state = _WRITTEN_OFF
                    self.stuck += 1
            raise

    def close(self) -> None:
        """Let idle threads end, and busy ones once their call returns; do not wait."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for inbox in idle:
            inbox.put(None)

    def _serve(self, inbox: queue.SimpleQueue[_Call | None]) -> None:
        while (call := inbox.get()) is not None:
            start = time.perf_counter()
            try:
                outcome: Outcome = (call.fn(**call.arguments), None)
            except BaseException as exc:  # SystemExit, KeyboardInterrupt...: all the tool's
                outcome = (None, exc)
            in_time = time.perf_counter() - start <= self.quick
            with self._lock:
                if in_time:
                    self._slow.discard(id(call.fn))
                if call.state is _WRITTEN_OFF:
                    self.stuck -= 1
                    return  # replaced long ago; nobody waits for this outcome
                call.state, call.outcome = _DONE, outcome
                # Idle again before answering, so that the next call finds this thread.
                stay = not self._closed and len(self._idle) < self.max_idle
                if stay:
                    self._idle.append(inbox)
                future, loop = call.future, call.loop
            if future is None or loop is None:
                call.answered.release()
            else:
                with contextlib.suppress(RuntimeError):  # a closed loop: nobody to answer
                    loop.call_soon_threadsafe(_deliver, future, outcome)
            if not stay:
                return
