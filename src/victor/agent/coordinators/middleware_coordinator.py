"""Wraps orchestrator calls (usually ``chat``) in a chain of middleware."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
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

    def apply_middleware(
        self, func: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(func)
        async def wrapped(*args: Any, **kwargs: Any) -> Any:
            for middleware in self.middleware:  # read at call time: later additions apply
                result = await middleware(self.orchestrator, func, *args, **kwargs)
                if result is not None:
                    return result
            return await func(*args, **kwargs)

        return wrapped
