"""The request bodies the server accepts, checked by pydantic (the OpenAPI document's
schemas come from the same models)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ChatCompletionRequest",
    "ChatRequest",
    "CompletionMessage",
    "FeedbackRequest",
]

MAX_MESSAGE_CHARS = 1_000_000
SESSION_ID = Field(default=None, min_length=1, max_length=256)


class ChatRequest(BaseModel):
    """One turn of a session (``POST /v1/chat``)."""

    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    session_id: str | None = SESSION_ID
    stream: bool = False
    model: str | None = Field(default=None, min_length=1, max_length=256)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, gt=0, le=1_000_000)
    system_prompt: str | None = Field(default=None, max_length=MAX_MESSAGE_CHARS)


class TextPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class CompletionMessage(BaseModel):
    """A message of OpenAI's chat completions request."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """OpenAI's ``POST /v1/chat/completions`` body; other OpenAI fields are accepted and
    ignored. The session is ``user``, or the ``X-Session-Id`` header."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=256)
    messages: list[CompletionMessage] = Field(min_length=1, max_length=10_000)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, gt=0, le=1_000_000)
    max_completion_tokens: int | None = Field(default=None, gt=0, le=1_000_000)
    n: int | None = Field(default=None, ge=1, le=1)
    user: str | None = SESSION_ID
    tools: list[dict[str, Any]] | None = None


class FeedbackRequest(BaseModel):
    """A user's rating of a session (``POST /v1/feedback``)."""

    model_config = ConfigDict(extra="forbid")

    session_id: str = Field(min_length=1, max_length=256)
    score: float = Field(ge=-1_000_000, le=1_000_000, allow_inf_nan=False)
    comment: str | None = Field(default=None, max_length=10_000)
