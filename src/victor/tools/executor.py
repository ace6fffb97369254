"""Runs the tool calls of one model response: validated, in parallel, each with a timeout.

Whatever goes wrong with a call (unknown tool, arguments that are not JSON or do not fit
the schema, a tool that raises or hangs) becomes an error result the model reads and can
react to; it never ends the turn.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel, ValidationError

from victor.protocols import Tool, ToolCall, ToolResult

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


class ToolExecutor:
    """Validates and runs tool calls.

    Sync functions run in the executor's own thread pool, so they cannot stall the event
    loop nor take the threads asyncio itself needs (DNS lookups). A sync tool that overruns
    its timeout is reported as timed out, but Python cannot stop its thread: it keeps its
    worker until it returns, and ``stuck_threads`` counts those.
    """

    def __init__(
        self,
        *,
        timeout: float = 30.0,
        max_parallel: int = 8,
        max_result_chars: int = 20_000,
        max_threads: int | None = None,
    ) -> None:
        self.timeout = timeout
        self.max_parallel = max_parallel
        self.max_result_chars = max_result_chars
        self.max_threads = max_threads or max(4, max_parallel * 2)
        self.stuck_threads = 0
        self._pool: ThreadPoolExecutor | None = None
        self._limit: asyncio.Semaphore | None = None
        self._limit_loop: asyncio.AbstractEventLoop | None = None

    def _semaphore(self) -> asyncio.Semaphore:
        # One per event loop: an orchestrator may outlive an asyncio.run().
        loop = asyncio.get_running_loop()
        if self._limit is None or self._limit_loop is not loop:
            self._limit = asyncio.Semaphore(self.max_parallel)
            self._limit_loop = loop
        return self._limit

    def _threads(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.max_threads, thread_name_prefix="victor-tool")
        return self._pool

    async def _call_sync(self, fn: Any, arguments: dict[str, Any]) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads(), functools.partial(fn, **arguments))

    def close(self) -> None:
        """Let the tool threads go once their calls end; do not wait for them."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

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
        async with self._semaphore():
            deadline = asyncio.timeout(timeout)
            try:
                async with deadline:
                    if tool.is_async:
                        value = await tool.fn(**arguments)
                    else:
                        value = await self._call_sync(tool.fn, arguments)
            except TimeoutError as exc:
                if not deadline.expired():  # the tool's own timeout, not ours
                    return self._result(
                        call, f"tool {call.name!r} failed: TimeoutError: {exc}", True, start
                    )
                if not tool.is_async:
                    self.stuck_threads += 1
                    logger.warning(
                        "sync tool %r overran %g s; its thread runs on", call.name, timeout
                    )
                return self._result(
                    call, f"tool {call.name!r} timed out after {timeout:g} s", True, start
                )
            except Exception as exc:
                return self._result(
                    call, f"tool {call.name!r} failed: {type(exc).__name__}: {exc}", True, start
                )
        return self._result(call, _to_text(value), False, start)

    async def run(self, calls: Sequence[ToolCall], tools: Mapping[str, Tool]) -> list[ToolResult]:
        """Run ``calls`` concurrently; results come back in the calls' order."""
        if len(calls) == 1:
            return [await self.run_one(calls[0], tools)]
        return list(await asyncio.gather(*(self.run_one(c, tools) for c in calls)))

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
