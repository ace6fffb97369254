"""What a middleware sees of a call: the message, session, tenant and config."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from victor.protocols.tenancy import tenant_of

__all__ = ["Request", "request_of"]

_EMPTY: Mapping[str, Any] = {}


@dataclass(slots=True)  # not frozen: built three times a turn, frozen costs 2x
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
