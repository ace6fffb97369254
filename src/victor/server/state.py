"""What the routes share: the orchestrator, the keys, the limits, the metrics, and who
is calling."""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from victor.agent.orchestrator import AgentOrchestrator
from victor.protocols import ChatResponse
from victor.server.errors import AUTHENTICATION, NOT_FOUND, UNAVAILABLE, APIError
from victor.server.keys import ApiKey, KeyStore, hash_key
from victor.server.limits import KeyLimits
from victor.server.metrics import ServerMetrics

logger = logging.getLogger(__name__)

__all__ = ["Caller", "ServerState"]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request: a key's tenant, or nobody (a server without keys)."""

    key: ApiKey | None = None

    @property
    def tenant(self) -> str | None:
        return self.key.tenant_id if self.key is not None else None


ANONYMOUS = Caller()


@dataclass
class ServerState:
    orchestrator: AgentOrchestrator
    key_store: KeyStore | None = None
    limits: KeyLimits = field(default_factory=KeyLimits)
    metrics: ServerMetrics = field(default_factory=ServerMetrics)
    auth: bool = True
    models: list[str] | None = None  # the models clients may ask for (None: any)
    max_body_bytes: int = 4 * 1024 * 1024
    # Seconds a verified key is trusted before it is read again: a revocation, or
    # another process's spend, is seen within that time (0: read on every request).
    key_cache_seconds: float = 1.0
    draining: bool = False
    ready: bool = False
    _keys: dict[str, tuple[float, ApiKey]] = field(default_factory=dict, repr=False)

    @property
    def default_model(self) -> str:
        return self.orchestrator.model

    def listed_models(self, caller: Caller) -> list[str]:
        models = list(self.models) if self.models else [self.default_model]
        if caller.key is not None and caller.key.allowed_models is not None:
            models = [m for m in models if m in caller.key.allowed_models]
        return models

    async def authenticate(self, request: Request) -> Caller:
        if not self.auth:
            return ANONYMOUS
        assert self.key_store is not None
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""
        token = token or request.headers.get("x-api-key", "").strip()
        if not token:
            raise APIError(
                401,
                "no API key: send 'Authorization: Bearer <key>'",
                type=AUTHENTICATION,
                code="missing_api_key",
            )
        key = await self._verify(token) if len(token) <= 256 else None
        if key is None:
            raise APIError(
                401,
                "the API key is wrong or revoked",
                type=AUTHENTICATION,
                code="invalid_api_key",
            )
        return Caller(key)

    async def _verify(self, token: str) -> ApiKey | None:
        assert self.key_store is not None
        if self.key_cache_seconds <= 0:
            return await self._read_key(token)
        now = time.monotonic()
        digest = hash_key(token)  # the cache holds no key in clear
        cached = self._keys.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        key = await self._read_key(token)
        if key is None:
            self._keys.pop(digest, None)
        else:
            if len(self._keys) >= 10_000:  # forget the oldest
                del self._keys[next(iter(self._keys))]
            self._keys[digest] = (now + self.key_cache_seconds, key)
        return key

    async def _read_key(self, token: str) -> ApiKey | None:
        assert self.key_store is not None
        try:
            return await self.key_store.verify(token)
        except Exception as exc:  # the database is down: nobody can be let in
            logger.warning("key store unavailable: %s", exc)
            raise APIError(
                503,
                "the key store is unavailable; retry later",
                type=UNAVAILABLE,
                code="key_store_unavailable",
                headers={"Retry-After": "1"},
            ) from None

    def _spent(self, key: ApiKey, usd: float) -> None:
        """Count a turn's cost in the cached record until it is read again."""
        for digest, (expires, cached) in self._keys.items():
            if cached.id == key.id:
                updated = dataclasses.replace(cached, spent_usd=cached.spent_usd + usd)
                self._keys[digest] = (expires, updated)
                break

    def check_model(self, caller: Caller, model: str) -> None:
        if self.models and model not in self.models:
            raise APIError(
                404,
                f"the model {model!r} is not served here (served: {', '.join(self.models)})",
                type=NOT_FOUND,
                code="model_not_found",
                param="model",
            )
        if caller.key is not None:
            self.limits.check_model(caller.key, model)

    async def before_turn(self, caller: Caller, prompt: str) -> None:
        if caller.key is not None:
            await self.limits.before(caller.key, prompt)

    async def after_turn(self, caller: Caller, prompt: str, response: ChatResponse) -> None:
        usage = response.usage
        self.metrics.turn(
            caller.tenant, response.model, usage.input_tokens, usage.output_tokens, response.cost
        )
        if caller.key is None:
            return
        await self.limits.after(caller.key, prompt, usage.total_tokens)
        if response.cost and self.key_store is not None:
            self._spent(caller.key, response.cost)
            try:
                await self.key_store.add_spend(caller.key, response.cost)
            except Exception:  # the answer is the client's: log the spend that is lost
                logger.exception(
                    "could not add %.6f USD to key %s's spend", response.cost, caller.key.id
                )

    async def read_body(self, request: Request, model: type[BaseModel]) -> Any:
        """The request's JSON body checked by ``model``; a 4xx APIError otherwise."""
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            raise _too_large(self.max_body_bytes)
        pieces: list[bytes] = []
        size = 0
        async for piece in request.stream():
            size += len(piece)
            if size > self.max_body_bytes:
                raise _too_large(self.max_body_bytes)
            pieces.append(piece)
        try:
            data = orjson.loads(b"".join(pieces))
        except orjson.JSONDecodeError as exc:
            raise APIError(400, f"the body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise APIError(400, "the body must be a JSON object")
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or None
            count = exc.error_count()
            more = f" (and {count - 1} more)" if count > 1 else ""
            message = f"{where}: {first['msg']}{more}" if where else f"{first['msg']}{more}"
            raise APIError(400, message, param=where) from None


def _too_large(limit: int) -> APIError:
    return APIError(413, f"the body is larger than {limit} bytes", code="request_too_large")
