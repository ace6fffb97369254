"""Errors as the server answers them: OpenAI's error shape, a status that fits the cause.

Every refusal is ``{"error": {"message", "type", "param", "code"}}`` with a 4xx status
for a request the client can fix, 429 for limits and budgets, and 502/503/504 for a
model provider that failed. Nothing the client sends produces a 500.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.responses import JSONResponse

from victor.errors import (
    AuthenticationError,
    ConfigError,
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderContextLengthError,
    ProviderError,
    ProviderModelNotFoundError,
    ProviderRateLimitError,
    ProviderTimeoutError,
    RateLimitExceeded,
    SessionConflictError,
    SessionStoreError,
    TenantMismatchError,
    ToolLoopLimitError,
)

logger = logging.getLogger(__name__)

__all__ = ["APIError", "error_body", "error_from_exception", "error_response"]

# OpenAI's error types, and the few of the server's own.
INVALID_REQUEST = "invalid_request_error"
AUTHENTICATION = "authentication_error"
PERMISSION = "permission_error"
NOT_FOUND = "not_found_error"
RATE_LIMIT = "rate_limit_error"
INSUFFICIENT_QUOTA = "insufficient_quota"
UPSTREAM = "upstream_error"
UNAVAILABLE = "service_unavailable"
SERVER = "server_error"


class APIError(Exception):
    """A refusal with its HTTP status, in OpenAI's error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = INVALID_REQUEST,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.code, self.param)


def error_body(
    message: str, type: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def error_response(error: APIError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


def _retry_after(seconds: float | None) -> dict[str, str]:
    if seconds is None:
        return {}
    return {"Retry-After": str(max(1, round(seconds + 0.5)))}


def error_from_exception(exc: BaseException) -> APIError:
    """The API error for an exception raised while serving a request."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, TenantMismatchError):
        # Another tenant's session: answered as if it did not exist.
        return APIError(404, "no such session", type=NOT_FOUND, code="session_not_found")
    if isinstance(exc, AuthenticationError):
        return APIError(401, str(exc), type=AUTHENTICATION, code="invalid_api_key")
    if isinstance(exc, RateLimitExceeded):
        return APIError(
            429,
            str(exc),
            type=RATE_LIMIT,
            code="rate_limit_exceeded",
            headers=_retry_after(exc.retry_after),
        )
    if isinstance(exc, SessionConflictError):
        return APIError(409, str(exc), type=INVALID_REQUEST, code="session_conflict")
    if isinstance(exc, SessionStoreError):
        logger.warning("session store unavailable: %s", exc)
        return APIError(
            503,
            "the session store is unavailable; retry later",
            type=UNAVAILABLE,
            code="session_store_unavailable",
            headers={"Retry-After": "1"},
        )
    if isinstance(exc, ToolLoopLimitError):
        return APIError(422, str(exc), type=INVALID_REQUEST, code="tool_loop_limit")
    if isinstance(exc, ProviderError):
        return _provider_error(exc)
    if isinstance(exc, ConfigError | ValueError | TypeError):
        return APIError(400, str(exc), type=INVALID_REQUEST)
    logger.exception("unexpected error while serving a request", exc_info=exc)
    return APIError(500, "internal error (logged on the server)", type=SERVER)


def _provider_error(exc: ProviderError) -> APIError:
    where = f"the model provider ({exc.provider})" if exc.provider else "the model provider"
    message = f"{where}: {exc}"
    if isinstance(exc, ProviderModelNotFoundError):
        return APIError(404, message, type=NOT_FOUND, code="model_not_found", param="model")
    if isinstance(exc, ProviderContextLengthError):
        return APIError(400, message, code="context_length_exceeded", param="messages")
    if isinstance(exc, ProviderBadRequestError):
        return APIError(400, message)
    if isinstance(exc, ProviderRateLimitError):
        return APIError(
            429,
            message,
            type=RATE_LIMIT,
            code="upstream_rate_limited",
            headers=_retry_after(exc.retry_after),
        )
    if isinstance(exc, ProviderTimeoutError):
        return APIError(504, message, type=UPSTREAM, code="upstream_timeout")
    if isinstance(exc, ProviderAuthError):
        return APIError(502, message, type=UPSTREAM, code="upstream_auth")
    return APIError(502, message, type=UPSTREAM, code="upstream_error")
