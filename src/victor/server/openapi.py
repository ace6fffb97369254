"""The OpenAPI 3.1 document of the server, its request schemas from the pydantic models."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from victor.__about__ import __version__
from victor.server.schemas import ChatCompletionRequest, ChatRequest, FeedbackRequest

__all__ = ["openapi_document"]

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _errors(*statuses: int) -> dict[str, Any]:
    return {
        str(status): {
            "description": "An error, in OpenAI's shape",
            "content": {"application/json": {"schema": _ref("Error")}},
        }
        for status in statuses
    }


def _post(summary: str, schema: str, ok: dict[str, Any], auth: bool = True) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref(schema)}},
            },
            "responses": {"200": ok, **_errors(400, 401, 403, 404, 409, 413, 422, 429, 502, 503)},
            **({} if auth else {"security": []}),
        }
    }


def _ok(description: str, streaming: bool = False) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": {"type": "object"}}}
    if streaming:
        content["text/event-stream"] = {"schema": {"type": "string"}}
    return {"description": description, "content": content}


def openapi_document() -> dict[str, Any]:
    _, defs = models_json_schema(
        [(m, "validation") for m in (ChatRequest, ChatCompletionRequest, FeedbackRequest)],
        ref_template="#/components/schemas/{model}",
    )
    schemas = dict(defs.get("$defs", {}))
    schemas["Error"] = _ERROR
    plain = {"security": []}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Victor", "version": __version__},
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/chat": _post(
                "One turn of a session; server-sent events with stream=true",
                "ChatRequest",
                _ok("The turn's ChatResponse", streaming=True),
            ),
            "/v1/chat/completions": _post(
                "OpenAI-compatible chat completions over the session named by user or X-Session-Id",
                "ChatCompletionRequest",
                _ok("A chat.completion, or chat.completion.chunk events", streaming=True),
            ),
            "/v1/feedback": _post("A rating of a session", "FeedbackRequest", _ok("Recorded")),
            "/v1/models": {
                "get": {
                    "summary": "The models a key may use",
                    "responses": {"200": _ok("A list of models"), **_errors(401)},
                }
            },
            "/v1/sessions/{session_id}": {
                "get": {
                    "summary": "A session's messages",
                    "parameters": [
                        {
                            "name": "session_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {"200": _ok("The session"), **_errors(401, 404)},
                }
            },
            "/healthz": {"get": {"responses": {"200": _ok("Alive")}, **plain}},
            "/readyz": {
                "get": {
                    "responses": {"200": _ok("Ready"), "503": _ok("Not ready")},
                    **plain,
                }
            },
            "/metrics": {
                "get": {
                    "responses": {
                        "200": {
                            "description": "Prometheus text format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                    **plain,
                }
            },
        },
    }
