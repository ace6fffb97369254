"""Built-in middleware for ``MiddlewareCoordinator``: logging, authentication and rate
limiting. A middleware is ``async def mw(orchestrator, func, *args, **kwargs)``: it returns
None to let the call go on, a value to answer in its place, or raises to stop it."""

from __future__ import annotations

from victor.middleware.auth import AuthenticationMiddleware, Validator, api_key_validator
from victor.middleware.log import LoggingMiddleware
from victor.middleware.ratelimit import (
    InMemoryTokenBucket,
    RateLimitMiddleware,
    RedisTokenBucket,
    TokenBucket,
    default_key,
)
from victor.middleware.redaction import REDACTED, redact_mapping, redact_text
from victor.protocols.middleware import Request, RequestMiddleware, request_of

__all__ = [
    "REDACTED",
    "AuthenticationMiddleware",
    "InMemoryTokenBucket",
    "LoggingMiddleware",
    "RateLimitMiddleware",
    "RedisTokenBucket",
    "Request",
    "RequestMiddleware",
    "TokenBucket",
    "Validator",
    "api_key_validator",
    "default_key",
    "redact_mapping",
    "redact_text",
    "request_of",
]
