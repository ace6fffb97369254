"""Runs the tool calls of one model response: validated, in parallel, each with a timeout.

Whatever goes wrong with a call becomes an error result the model reads and can react to;
it never ends the turn: an unknown tool, arguments that are not JSON or do not fit the
schema, a tool that raises anything (``SystemExit``, ``KeyboardInterrupt`` and its own
``CancelledError`` included), returns what cannot be turned into text, returns a generator
or a coroutine it never awaited, or overruns its timeout.

Only a real cancellation of the turn (of the task awaiting :meth:`ToolExecutor.run`) ends
it: ``CancelledError`` propagates, an async tool in flight receives it, and a sync tool's
thread is written off (the executor does not wait for it).

An async tool is awaited in the turn's own task: no hand-off, so nothing is added to the
fast path. Its own ``CancelledError`` (raised while the task was not asked to cancel:
``Task.cancelling()`` is 0) is an error like any other. At its timeout it is cancelled;
one that swallows that cancellation is still reported as timed out when it returns, but
the turn cannot stop it sooner and waits for it.

A sync tool runs in a thread (:mod:`victor.tools.threads`). One overrunning its timeout is
reported as timed out, its thread is written off and replaced, and ``stuck_threads``
counts such threads until their calls return. Past ``max_stuck_threads`` of them (32 by
default) sync calls are refused at once with an error result ("not started"), async ones
still run, until some end.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from victor.protocols import Tool, ToolCall, ToolResult
from victor.tools.threads import Outcome, ToolThreads, ToolThreadsExhausted

logger = logging.getLogger(__name__)


def _format_validation_error(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "(arguments)"
        problems.append(f"{where}: {err['msg']}")
    return "; ".join(problems)


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def _describe(exc: BaseException) -> str:
    """``Type: message``, even when reading the message fails."""
    try:
        message = str(exc)
    except BaseException:
        message = "(its message cannot be read)"
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _not_a_result(value: Any) -> str | None:
    """Why ``value`` cannot be a tool's result, or None when it can."""
    if inspect.iscoroutine(value):
        value.close()  # never awaited: closed, not left to warn when collected
        return "returned a coroutine it never awaited: make the tool `async def`, or await inside"
    if inspect.isawaitable(value):
        return "returned an awaitable, not its result: make the tool `async def`, or await inside"
    if inspect.isgenerator(value) or inspect.isasyncgen(value):
        return "returned a generator, not a result: return a list or a string instead"
    return None


class ToolExecutor:
    """Validates and runs tool calls.

    Sync functions run in threads of the executor's own (:class:`ToolThreads`), so they
    cannot stall the event loop nor take the threads asyncio itself needs (DNS lookups),
    and one stuck call never holds up another. ``max_parallel`` bounds how many calls of
    one model response run at once; responses of different turns never wait for each
    other. ``max_idle_threads`` threads are kept for the next sync calls;
    ``max_stuck_threads`` bounds the written-off ones (see the module's docstring).
    """

    def __init__(
        self,
        *,
        timeout: float = 30.0,
        max_parallel: int = 8,
        max_result_chars: int = 20_000,
        max_idle_threads: int | None = None,
        max_stuck_threads: int = 32,
    ) -> None:
        self.timeout = timeout
        self.max_parallel = max_parallel
        self.max_result_chars = max_result_chars
        self._threads = ToolThreads(
            max_idle=max_idle_threads or max(4, max_parallel * 2), max_stuck=max_stuck_threads
        )

    @property
    def stuck_threads(self) -> int:
        """Threads still running a sync call nobody waits for any more."""
        return self._threads.stuck

    def close(self) -> None:
        """Let the tool threads go once their calls end; do not wait for them."""
        self._threads.close()

    def validate(self, tool: Tool, call: ToolCall) -> dict[str, Any]:
        """The call's arguments, coerced; raises ValueError with a readable reason."""
        if call.raw_arguments is not None:
            raise ValueError(
                f"the arguments are not a JSON object ({call.raw_arguments[:200]!r}); "
                "call the tool again with valid JSON"
            )
        model = tool._arguments_model
        if model is not None:
            try:
                validated = model.model_validate(call.arguments)
            except ValidationError as exc:
                raise ValueError(f"invalid arguments: {_format_validation_error(exc)}") from None
            return {
                field.alias or name: getattr(validated, name)
                for name, field in type(validated).model_fields.items()
            }
        if tool.parameters.get("properties") or tool.parameters.get("required"):
            import jsonschema

            try:
                jsonschema.validate(call.arguments, tool.parameters)
            except jsonschema.ValidationError as exc:
                where = ".".join(str(p) for p in exc.absolute_path) or "(arguments)"
                raise ValueError(f"invalid arguments: {where}: {exc.message}") from None
            except jsonschema.SchemaError as exc:
                raise ValueError(f"the tool's own schema is invalid: {exc.message}") from None
        return dict(call.arguments)

    async def run_one(self, call: ToolCall, tools: Mapping[str, Tool]) -> ToolResult:
        start = time.perf_counter()
        tool = tools.get(call.name)
        if tool is None:
            names = ", ".join(sorted(tools)) or "none"
            return self._result(
                call, f"unknown tool {call.name!r}; available tools: {names}", True, start
            )
        if tool.fn is None:
            return self._result(call, f"tool {call.name!r} cannot be run here", True, start)
        try:
            arguments = self.validate(tool, call)
        except ValueError as exc:
            return self._result(call, str(exc), True, start)
        timeout = tool.timeout or self.timeout
        task = asyncio.current_task()
        cancels = task.cancelling() if task is not None else 0
        deadline = asyncio.timeout(timeout)
        try:
            async with deadline:
                if tool.is_async:
                    value, error = await self._run_async(tool, arguments, cancels)
                else:
                    value, error = await self._run_sync(tool, arguments)
        except TimeoutError:  # ours: a tool's own arrives as its outcome's error
            return self._timed_out(call, tool, timeout, start)
        except ToolThreadsExhausted as exc:
            return self._result(call, f"tool {call.name!r} not started: {exc}", True, start)
        if task is not None and task.cancelling() > cancels:
            raise asyncio.CancelledError  # the turn's cancellation, swallowed by the tool
        if deadline.expired():  # it swallowed the cancellation the deadline sent
            return self._timed_out(call, tool, timeout, start)
        if error is not None:
            return self._result(call, f"tool {call.name!r} failed: {_describe(error)}", True, start)
        problem = None if type(value) is str else _not_a_result(value)
        if problem is not None:
            return self._result(call, f"tool {call.name!r} {problem}", True, start)
        try:
            text = _to_text(value)
        except BaseException as exc:
            return self._result(
                call,
                f"tool {call.name!r} returned a result that cannot be turned into text: "
                f"{_describe(exc)}",
                True,
                start,
            )
        return self._result(call, text, False, start)

    async def _run_async(self, tool: Tool, arguments: dict[str, Any], cancels: int) -> Outcome:
        # Awaited in the turn's own task: no hand-off, nothing added to the fast path. A
        # CancelledError is the tool's own unless this task was asked to cancel since the
        # call began (``cancels`` requests before it), by the deadline or by whoever
        # cancels the turn.
        try:
            return await tool.fn(**arguments), None  # type: ignore[misc]
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling() > cancels:
                raise
            return None, exc
        except BaseException as exc:  # SystemExit, KeyboardInterrupt...: all the tool's
            return None, exc

    async def _run_sync(self, tool: Tool, arguments: dict[str, Any]) -> Outcome:
        return await self._threads.run(tool.fn, arguments)  # type: ignore[arg-type]

    def _timed_out(self, call: ToolCall, tool: Tool, timeout: float, start: float) -> ToolResult:
        if not tool.is_async:
            logger.warning("sync tool %r overran %g s; its thread runs on", call.name, timeout)
        return self._result(call, f"tool {call.name!r} timed out after {timeout:g} s", True, start)

    async def run(self, calls: Sequence[ToolCall], tools: Mapping[str, Tool]) -> list[ToolResult]:
        """Run ``calls`` concurrently, at most ``max_parallel`` at once; results come back
        in the calls' order."""
        if len(calls) == 1:
            return [await self.run_one(calls[0], tools)]
        limit = asyncio.Semaphore(self.max_parallel)

        async def limited(call: ToolCall) -> ToolResult:
            async with limit:
                return await self.run_one(call, tools)

        return list(await asyncio.gather(*(limited(c) for c in calls)))

    def _result(self, call: ToolCall, content: str, is_error: bool, start: float) -> ToolResult:
        if len(content) > self.max_result_chars:
            cut = len(content) - self.max_result_chars
            content = content[: self.max_result_chars] + f"\n[... {cut} more characters cut]"
        return ToolResult(
            call=call,
            content=content,
            is_error=is_error,
            duration_ms=(time.perf_counter() - start) * 1000,
        )
