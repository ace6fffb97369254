"""Wraps orchestrator calls (usually ``chat``) in a chain of middleware."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

__all__ = ["Middleware", "MiddlewareCoordinator"]

Middleware = Callable[..., Awaitable[Any]]


class MiddlewareCoordinator:
    """Runs middleware before a call, in the order added.

    A middleware is ``async def mw(orchestrator, func, *args, **kwargs)``. Returning None
    lets the call go on; returning anything else short-circuits it with that value;
    raising stops it with that error.

    ```python
    middleware = MiddlewareCoordinator(orchestrator)
    middleware.add_middleware(require_api_key)
    orchestrator.chat = middleware.apply_middleware(orchestrator.chat)
    ```
    """

    def __init__(self, orchestrator: Any = None) -> None:
        self.orchestrator = orchestrator
        self.middleware: list[Middleware] = []

    def add_middleware(self, middleware: Middleware) -> None:
        self.middleware.append(middleware)

    def apply_middleware(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap ``func``: a coroutine function (``chat``) or an async generator function
        (``stream``, whose short-circuit value is yielded as its only item)."""
        if inspect.isasyncgenfunction(func):

            @functools.wraps(func)
            async def wrapped_stream(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
                result = await self._run_middleware(func, args, kwargs)
                if result is not None:
                    yield result
                    return
                async for item in func(*args, **kwargs):
                    yield item

            return wrapped_stream

        @functools.wraps(func)
        async def wrapped(*args: Any, **kwargs: Any) -> Any:
            result = await self._run_middleware(func, args, kwargs)
            if result is not None:
                return result
            return await func(*args, **kwargs)

        return wrapped

    async def _run_middleware(
        self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        for middleware in self.middleware:  # read at call time: later additions apply
            result = await middleware(self.orchestrator, func, *args, **kwargs)
            if result is not None:
                return result
        return None
