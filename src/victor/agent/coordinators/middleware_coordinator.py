"""Runs middleware around orchestrator calls (``chat`` and ``stream``)."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from victor.protocols import ChatResponse, StreamChunk
from victor.protocols.middleware import Request, RequestMiddleware, request_of

if TYPE_CHECKING:
    from victor.middleware import (
        AuthenticationMiddleware,
        LoggingMiddleware,
        RateLimitMiddleware,
    )

# ``async def middleware(orchestrator, func, *args, **kwargs) -> None | answer``
Middleware = Callable[..., Any]

logger = logging.getLogger(__name__)

__all__ = [
    "AuthenticationMiddleware",
    "LoggingMiddleware",
    "Middleware",
    "MiddlewareCoordinator",
    "RateLimitMiddleware",
    "Request",
    "RequestMiddleware",
]


class MiddlewareCoordinator:
    """Runs middleware before a call, in the order added.

    A middleware is ``async def mw(orchestrator, func, *args, **kwargs)``. Returning None
    lets the call go on; returning anything else answers in its place; raising stops it
    with that error. ``func`` is the method called (``chat`` or ``stream``), to look at,
    not to call.

    Two ways to use it. Wrap a method (the orchestrator's ``chat`` or ``stream``, or any
    coroutine function), and middleware sees the call's own arguments:

    ```python
    middleware = MiddlewareCoordinator(orchestrator)
    middleware.add_middleware(require_api_key)
    orchestrator.chat = middleware.apply_middleware(orchestrator.chat)
    ```

    Or hand it to the orchestrator, ``AgentOrchestrator(...,
    _middleware_coordinator=middleware)``: it then runs for ``chat`` and ``stream``
    alike, once the turn's config is loaded, as
    ``mw(orchestrator, func, message, session_id=..., tenant_id=..., config=...)`` with
    the session's resolved id, tenant and config.
    """

    def __init__(
        self, orchestrator: Any = None, middleware: list[Middleware] | None = None
    ) -> None:
        self.orchestrator = orchestrator
        self.middleware: list[Middleware] = list(middleware or [])

    def add_middleware(self, middleware: Middleware) -> None:
        if not callable(middleware):
            raise TypeError(f"a middleware is an async callable, not {middleware!r}")
        self.middleware.append(middleware)

    def apply_middleware(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap ``func``: a coroutine function (``chat``) or an async generator function
        (``stream``, whose early answer is yielded as its only item)."""
        if inspect.isasyncgenfunction(func):

            @functools.wraps(func)
            async def wrapped_stream(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
                result = await self.run(func, args, kwargs)
                if result is not None:
                    yield result
                    return
                async for item in func(*args, **kwargs):
                    yield item

            return wrapped_stream

        @functools.wraps(func)
        async def wrapped(*args: Any, **kwargs: Any) -> Any:
            result = await self.run(func, args, kwargs)
            if result is not None:
                return result
            return await func(*args, **kwargs)

        return wrapped

    async def run(
        self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """The first early answer of the middleware, or None when all let the call go on.
        A :class:`RequestMiddleware` gets the call's :class:`Request`, built once and
        shared by all of them."""
        request: Request | None = None
        for middleware in self.middleware:  # read at call time: later additions apply
            if isinstance(middleware, RequestMiddleware):
                if request is None:
                    request = request_of(func, args, kwargs)
                result = await middleware.handle(self.orchestrator, request)
            else:
                result = await middleware(self.orchestrator, func, *args, **kwargs)
            if result is not None:
                return result
        return None

    @staticmethod
    def as_response(value: Any, session_id: str | None = None) -> ChatResponse:
        """A middleware's early answer as the response of a turn: a ``ChatResponse`` as
        it is, a string as its content, a stream chunk by its response or text."""
        if isinstance(value, StreamChunk):
            value = value.response if value.response is not None else value.text
        if isinstance(value, ChatResponse):
            return (
                value if value.session_id else value.model_copy(update={"session_id": session_id})
            )
        if isinstance(value, str):
            return ChatResponse(content=value, finish_reason="middleware", session_id=session_id)
        raise TypeError(
            "a middleware answers with None (go on), a str or a ChatResponse, "
            f"not {type(value).__name__}"
        )

    async def aclose(self) -> None:
        """Close the middleware that hold resources (a rate limiter's Redis client)."""
        for middleware in self.middleware:
            close = getattr(middleware, "aclose", None)
            if close is None:
                continue
            try:
                await close()
            except Exception:
                logger.exception("error while closing middleware %r", middleware)


_BUILT_INS = ("AuthenticationMiddleware", "LoggingMiddleware", "RateLimitMiddleware")


def __getattr__(name: str) -> Any:
    # The built-ins load on first use: importing the orchestrator stays light.
    if name in _BUILT_INS:
        import victor.middleware

        return getattr(victor.middleware, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
