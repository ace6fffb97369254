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

The hand-off: the call's answer reaches the event loop through
``loop.call_soon_threadsafe``, the loop's own thread-safe entry point; the loop thread
never waits for a tool.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any

# What a call ended with: its return value, or the exception it raised (then the value is None).
Outcome = tuple[Any, BaseException | None]

_RUNNING, _DONE, _WRITTEN_OFF = "running", "done", "written off"


class ToolThreadsExhausted(RuntimeError):
    """A new sync call is not started: too many written-off threads are still running, or
    the system refuses another thread."""


class _Call:
    """One sync call handed to a thread, and the event-loop future its answer goes to."""

    __slots__ = ("arguments", "fn", "future", "loop", "state")

    def __init__(
        self,
        fn: Callable[..., Any],
        arguments: dict[str, Any],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.fn = fn
        self.arguments = arguments
        self.state = _RUNNING
        self.loop = loop
        self.future: asyncio.Future[Outcome] = loop.create_future()


def _deliver(future: asyncio.Future[Outcome], outcome: Outcome) -> None:
    if not future.done():  # the caller may have stopped waiting meanwhile
        future.set_result(outcome)


class ToolThreads:
    """Runs sync functions in threads of their own, for an event loop to await."""

    def __init__(self, *, max_idle: int = 16, max_stuck: int = 32) -> None:
        self.max_idle = max_idle
        self.max_stuck = max_stuck
        self.stuck = 0
        self._idle: list[queue.SimpleQueue[_Call | None]] = []
        self._lock = threading.Lock()  # the calls' state, ``stuck``, ``_idle``
        self._closed = False

    async def run(self, fn: Callable[..., Any], arguments: dict[str, Any]) -> Outcome:
        """``fn(**arguments)`` in a thread. Cancelled, it writes the thread off."""
        if self.stuck >= self.max_stuck:
            raise ToolThreadsExhausted(
                f"{self.stuck} sync tool threads still run calls that overran their timeout "
                f"or whose turn was cancelled (the limit is {self.max_stuck}); "
                "they must end first"
            )
        call = _Call(fn, arguments, asyncio.get_running_loop())
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
            try:
                outcome: Outcome = (call.fn(**call.arguments), None)
            except BaseException as exc:  # SystemExit, KeyboardInterrupt...: all the tool's
                outcome = (None, exc)
            with self._lock:
                if call.state is _WRITTEN_OFF:
                    self.stuck -= 1
                    return  # replaced long ago; nobody waits for this outcome
                call.state = _DONE
                # Idle again before answering, so that the next call finds this thread.
                stay = not self._closed and len(self._idle) < self.max_idle
                if stay:
                    self._idle.append(inbox)
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody to answer
                call.loop.call_soon_threadsafe(_deliver, call.future, outcome)
            if not stay:
                return
