"""The HTTP endpoints: chat (JSON and server-sent events), OpenAI's chat completions,
models, sessions, feedback, health and metrics."""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from victor.protocols import ChatResponse, StreamChunk
from victor.protocols.analytics import new_session_id
from victor.protocols.tenancy import scoped_session_id
from victor.server import openai_compat
from victor.server.errors import NOT_FOUND, APIError, error_from_exception, error_response
from victor.server.metrics import CONTENT_TYPE_LATEST
from victor.server.schemas import ChatCompletionRequest, ChatRequest, FeedbackRequest
from victor.server.state import Caller, ServerState

__all__ = ["api_routes"]

SESSION_HEADER = "x-session-id"
Handler = Callable[[ServerState, Request, dict[str, Any]], Awaitable[Response]]


def _state(request: Request) -> ServerState:
    return request.app.state.victor


def endpoint(route: str) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Runs a handler with its errors answered in OpenAI's shape, and measured. The
    handler fills ``labels`` (tenant, model); a stream measures itself when it ends."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def run(request: Request) -> Response:
            state = _state(request)
            labels: dict[str, Any] = {"tenant": None, "model": None, "start": time.perf_counter()}
            try:
                response = await handler(state, request, labels)
            except Exception as exc:
                error = error_from_exception(exc)
                state.metrics.observe(
                    route,
                    error.status,
                    time.perf_counter() - labels["start"],
                    labels["tenant"],
                    labels["model"],
                    error.type,
                )
                return error_response(error)
            if not labels.get("streaming"):
                state.metrics.observe(
                    route,
                    response.status_code,
                    time.perf_counter() - labels["start"],
                    labels["tenant"],
                    labels["model"],
                )
            return response

        return run

    return wrap


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def _sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + orjson.dumps(data) + b"\n\n"


async def _started(chunks: AsyncIterator[StreamChunk]) -> StreamChunk:
    """The first chunk of a turn: errors before any output become the HTTP answer."""
    try:
        return await anext(chunks)
    except BaseException:
        await chunks.aclose()
        raise


def _response_body(response: ChatResponse) -> dict[str, Any]:
    return response.model_dump(mode="json")


async def _open_turn(
    state: ServerState,
    caller: Caller,
    message: str,
    session_id: str | None,
    overrides: dict[str, Any],
    *,
    streaming: bool,
) -> AsyncIterator[StreamChunk]:
    await state.before_turn(caller, message)
    if caller.tenant is not None:
        overrides["tenant_id"] = caller.tenant
    if streaming:
        return state.orchestrator.stream(message, session_id, **overrides)

    async def whole() -> AsyncIterator[StreamChunk]:
        response = await state.orchestrator.chat(message, session_id, **overrides)
        yield StreamChunk(type="done", response=response)

    return whole()


def _overrides(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


# -- POST /v1/chat -------------------------------------------------------------------------


@endpoint("/v1/chat")
async def chat(state: ServerState, request: Request, labels: dict[str, Any]) -> Response:
    caller = await state.authenticate(request)
    labels["tenant"] = caller.tenant
    body: ChatRequest = await state.read_body(request, ChatRequest)
    model = body.model or state.default_model
    labels["model"] = model
    state.check_model(caller, model)
    overrides = _overrides(
        model=body.model,
        temperature=body.temperature,
        max_tokens=body.max_tokens,
        system_prompt=body.system_prompt,
    )
    chunks = await _open_turn(
        state, caller, body.message, body.session_id, overrides, streaming=body.stream
    )
    first = await _started(chunks)
    if not body.stream:
        assert first.response is not None
        await chunks.aclose()
        await state.after_turn(caller, body.message, first.response)
        return _json(_response_body(first.response))
    labels["streaming"] = True

    async def events() -> AsyncIterator[bytes]:
        status, error_type = 200, None
        try:
            async with aclosing(chunks):
                chunk: StreamChunk | None = first
                while chunk is not None:
                    if chunk.type == "done" and chunk.response is not None:
                        await state.after_turn(caller, body.message, chunk.response)
                        yield _sse(_response_body(chunk.response), "done")
                    elif chunk.type == "text":
                        yield _sse({"text": chunk.text}, "text")
                    elif chunk.type in ("tool_start", "tool_end") and chunk.tool_call is not None:
                        data: dict[str, Any] = {
                            "id": chunk.tool_call.id,
                            "name": chunk.tool_call.name,
                            "arguments": chunk.tool_call.arguments,
                        }
                        if chunk.tool_result is not None:
                            data["is_error"] = chunk.tool_result.is_error
                            data["content"] = chunk.tool_result.content
                        yield _sse(data, chunk.type)
                    chunk = await anext(chunks, None)
        except Exception as exc:
            error = error_from_exception(exc)
            status, error_type = error.status, error.type
            yield _sse(error.body(), "error")
        finally:
            state.metrics.observe(
                "/v1/chat",
                status,
                time.perf_counter() - labels["start"],
                caller.tenant,
                model,
                error_type,
            )

    return StreamingResponse(events(), media_type="text/event-stream", headers=_no_buffering())


def _no_buffering() -> dict[str, str]:
    return {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


# -- POST /v1/chat/completions -------------------------------------------------------------


async def _completion_session(
    state: ServerState, caller: Caller, request: Request, body: ChatCompletionRequest, turn: Any
) -> str:
    """The request's session; a new one holding the request's earlier messages if none."""
    session_id = request.headers.get(SESSION_HEADER) or body.user
    if session_id is not None:
        if not session_id or len(session_id) > 256:
            raise APIError(400, "the session id must be 1-256 characters", param="user")
        return session_id
    session_id = scoped_session_id(new_session_id(), caller.tenant)
    if turn.earlier:
        store = state.orchestrator.session_store
        await store.open()
        await store.create(session_id, turn.earlier)
    return session_id


@endpoint("/v1/chat/completions")
async def chat_completions(
    state: ServerState, request: Request, labels: dict[str, Any]
) -> Response:
    caller = await state.authenticate(request)
    labels["tenant"] = caller.tenant
    body: ChatCompletionRequest = await state.read_body(request, ChatCompletionRequest)
    labels["model"] = body.model
    state.check_model(caller, body.model)
    turn = openai_compat.turn_of(body)
    # Check the limits before a new session is stored for the request.
    await state.before_turn(caller, turn.message)
    session_id = await _completion_session(state, caller, request, body, turn)
    overrides = _overrides(
        model=body.model,
        temperature=body.temperature,
        max_tokens=turn.max_tokens,
        system_prompt=turn.system_prompt,
    )
    if caller.tenant is not None:
        overrides["tenant_id"] = caller.tenant
    orchestrator = state.orchestrator
    if not body.stream:
        response = await orchestrator.chat(turn.message, session_id, **overrides)
        await state.after_turn(caller, turn.message, response)
        headers = {"X-Session-Id": response.session_id or session_id}
        return _json(openai_compat.completion(response, body.model), headers=headers)

    chunks = orchestrator.stream(turn.message, session_id, **overrides)
    first = await _started(chunks)
    labels["streaming"] = True
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    completion_id = openai_compat.new_id()
    created = int(time.time())
    model = body.model

    async def events() -> AsyncIterator[bytes]:
        status, error_type = 200, None
        try:
            async with aclosing(chunks):
                yield _data(
                    openai_compat.chunk(
                        completion_id, created, model, {"role": "assistant", "content": ""}
                    )
                )
                chunk: StreamChunk | None = first
                while chunk is not None:
                    if chunk.type == "text" and chunk.text:
                        yield _data(
                            openai_compat.chunk(
                                completion_id, created, model, {"content": chunk.text}
                            )
                        )
                    elif chunk.type == "done" and chunk.response is not None:
                        response = chunk.response
                        await state.after_turn(caller, turn.message, response)
                        yield _data(
                            openai_compat.chunk(
                                completion_id,
                                created,
                                response.model or model,
                                {},
                                openai_compat.finish_reason_of(response),
                                extra=openai_compat.victor_fields(response),
                            )
                        )
                        if include_usage:
                            yield _data(
                                openai_compat.chunk(
                                    completion_id,
                                    created,
                                    response.model or model,
                                    None,
                                    usage=response.usage,
                                )
                            )
                    chunk = await anext(chunks, None)
            yield b"data: [DONE]\n\n"
        except Exception as exc:
            error = error_from_exception(exc)
            status, error_type = error.status, error.type
            yield _data(error.body())
        finally:
            state.metrics.observe(
                "/v1/chat/completions",
                status,
                time.perf_counter() - labels["start"],
                caller.tenant,
                model,
                error_type,
            )

    headers = {**_no_buffering(), "X-Session-Id": scoped_session_id(session_id, caller.tenant)}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


def _data(body: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(body) + b"\n\n"


# -- models, sessions, feedback ------------------------------------------------------------


@endpoint("/v1/models")
async def models(state: ServerState, request: Request, labels: dict[str, Any]) -> Response:
    caller = await state.authenticate(request)
    labels["tenant"] = caller.tenant
    data = [
        {"id": name, "object": "model", "created": 0, "owned_by": state.orchestrator.provider.name}
        for name in state.listed_models(caller)
    ]
    return _json({"object": "list", "data": data})


def _no_session() -> APIError:
    return APIError(404, "no such session", type=NOT_FOUND, code="session_not_found")


@endpoint("/v1/sessions/{session_id}")
async def session(state: ServerState, request: Request, labels: dict[str, Any]) -> Response:
    caller = await state.authenticate(request)
    labels["tenant"] = caller.tenant
    session_id = request.path_params["session_id"]
    if not session_id or len(session_id) > 256:
        raise _no_session()
    scoped = scoped_session_id(session_id, caller.tenant)
    messages = await state.orchestrator.history(scoped, tenant_id=caller.tenant)
    if not messages:
        raise _no_session()
    return _json(
        {
            "id": scoped,
            "object": "session",
            "messages": [
                m.model_dump(mode="json", exclude_defaults=True, exclude={"metadata"})
                | {"role": m.role, "content": m.content}
                for m in messages
            ],
        }
    )


@endpoint("/v1/feedback")
async def feedback(state: ServerState, request: Request, labels: dict[str, Any]) -> Response:
    caller = await state.authenticate(request)
    labels["tenant"] = caller.tenant
    body: FeedbackRequest = await state.read_body(request, FeedbackRequest)
    scoped = scoped_session_id(body.session_id, caller.tenant)
    if not await state.orchestrator.history(scoped, tenant_id=caller.tenant):
        raise _no_session()
    await state.orchestrator.record_feedback(
        scoped, body.score, body.comment, tenant_id=caller.tenant
    )
    return _json({"object": "feedback", "session_id": scoped, "recorded": True})


# -- health and metrics --------------------------------------------------------------------


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    state = _state(request)
    if state.draining or not state.ready:
        reason = "shutting down" if state.draining else "starting"
        return JSONResponse({"status": reason}, status_code=503)
    return JSONResponse({"status": "ready"})


async def metrics(request: Request) -> Response:
    return Response(_state(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)


def api_routes() -> list[Route]:
    return [
        Route("/v1/chat", chat, methods=["POST"]),
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/sessions/{session_id:str}", session, methods=["GET"]),
        Route("/v1/feedback", feedback, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
