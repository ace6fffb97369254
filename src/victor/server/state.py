"""What the routes share: the orchestrator, the keys, the limits, the metrics, and who
is calling."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from victor.agent.orchestrator import AgentOrchestrator
from victor.protocols import ChatResponse
from victor.server.errors import AUTHENTICATION, NOT_FOUND, APIError
from victor.server.keys import ApiKey, KeyStore
from victor.server.limits import KeyLimits
from victor.server.metrics import ServerMetrics

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
    draining: bool = False
    ready: bool = False

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
        key = await self.key_store.verify(token) if len(token) <= 256 else None
        if key is None:
            raise APIError(
                401,
                "the API key is wrong or revoked",
                type=AUTHENTICATION,
                code="invalid_api_key",
            )
        return Caller(key)

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
            await self.key_store.add_spend(caller.key, response.cost)

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
