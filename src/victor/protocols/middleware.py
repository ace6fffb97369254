"""What a middleware sees of a call: the message, session, tenant and config."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from victor.protocols.tenancy import tenant_of

__all__ = ["Request", "RequestMiddleware", "request_of"]

_EMPTY: Mapping[str, Any] = {}


@dataclass(frozen=True, slots=True)  # frozen: one view is shared by the middleware of a run
class Request:
    """A call to ``chat`` or ``stream`` as middleware sees it. ``config`` is the session's
    loaded config when the orchestrator runs the middleware (``_middleware_coordinator=``),
    the caller's ``config=`` when a wrapped ``chat`` does."""

    function: str
    message: str
    session_id: str | None
    tenant_id: str | None
    config: Mapping[str, Any]


def request_of(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
    """The :class:`Request` of a call ``func(*args, **kwargs)`` shaped like ``chat``."""
    message = args[0] if args else kwargs.get("message", "")
    session_id = args[1] if len(args) > 1 else kwargs.get("session_id")
    config = kwargs.get("config")
    if not isinstance(config, Mapping):
        config = _EMPTY
    tenant = kwargs.get("tenant_id") or config.get("tenant_id")
    if tenant is None and isinstance(session_id, str):
        tenant = tenant_of(session_id)
    return Request(
        function=getattr(func, "__name__", "call"),
        message=message if isinstance(message, str) else str(message),
        session_id=session_id if isinstance(session_id, str) else None,
        tenant_id=tenant if isinstance(tenant, str) else None,
        config=config,
    )


class RequestMiddleware(ABC):
    """A middleware that looks at the call only through its :class:`Request`.

    ``MiddlewareCoordinator`` builds the request once per call and hands the same one to
    each such middleware (:meth:`handle`); called as a plain middleware, it builds its own.
    """

    async def __call__(
        self, orchestrator: Any, func: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Any:
        return await self.handle(orchestrator, request_of(func, args, kwargs))

    @abstractmethod
    async def handle(self, orchestrator: Any, request: Request) -> Any:
        """None to let the call go on, a value to answer in its place, or raise."""
