"""``AuthenticationMiddleware``: a request goes on only with a credential the validator
accepts."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from victor.errors import AuthenticationError
from victor.protocols.middleware import Request, RequestMiddleware

__all__ = ["AuthenticationMiddleware", "Validator", "api_key_validator"]

# ``validator(credential, request) -> bool`` (sync or async); it may also raise
# AuthenticationError with its own message.
Validator = Callable[[str, Request], bool | Awaitable[bool]]


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def api_key_validator(keys: Mapping[str, str | None]) -> Validator:
    """A validator for a fixed set of API keys, each bound to a tenant (or None: any
    tenant). A key bound to a tenant is refused for another tenant's sessions. Keys are
    held as SHA-256 digests and looked up by digest, not compared character by character."""
    tenants = {_digest(key): tenant for key, tenant in keys.items()}

    def validate(credential: str, request: Request) -> bool:
        digest = _digest(credential)
        if digest not in tenants:
            return False
        tenant = tenants[digest]
        if tenant is not None and request.tenant_id != tenant:
            raise AuthenticationError(f"this API key is not valid for tenant {request.tenant_id!r}")
        return True

    return validate


class AuthenticationMiddleware(RequestMiddleware):
    """Refuses a request with :class:`~victor.errors.AuthenticationError` unless
    ``validator`` accepts its credential.

    The credential is the ``credential_key`` entry (``api_key`` by default) of the request's
    config: ``chat(message, session_id=..., config={"api_key": ...})``, or a tenant's config.
    ``validator(credential, request)`` returns a bool (or an awaitable of one) or raises.
    """

    def __init__(self, validator: Validator, *, credential_key: str = "api_key") -> None:
        if not callable(validator):
            raise TypeError(
                f"validator must be callable as validator(credential, request), not {validator!r}"
            )
        self.validator = validator
        self.credential_key = credential_key

    async def handle(self, orchestrator: Any, request: Request) -> None:
        credential = request.config.get(self.credential_key)
        if not isinstance(credential, str) or not credential:
            raise AuthenticationError(
                f"no credential: pass config={{{self.credential_key!r}: ...}} with the request"
            )
        accepted = self.validator(credential, request)
        if inspect.isawaitable(accepted):
            accepted = await accepted
        if accepted is not True:
            where = f" for tenant {request.tenant_id!r}" if request.tenant_id else ""
            raise AuthenticationError(f"invalid credential{where}")
        return None
