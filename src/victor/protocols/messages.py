"""Conversation data: messages, tool calls, token usage and model responses."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from victor.protocols.text import clean_text, clean_value

Role = Literal["system", "user", "assistant", "tool"]


class ToolCall(BaseModel):
    """A request from the model to run one tool. Immutable, like :class:`Message`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    # The model's raw argument text when it was not a JSON object; the tool is then not run
    # and the model is told why.
    raw_arguments: str | None = None

    _clean_text = field_validator("id", "name", "raw_arguments")(
        lambda v: v if v is None else clean_text(v)
    )
    _clean_arguments = field_validator("arguments")(clean_value)


class Message(BaseModel):
    """One message of a conversation, in a provider-neutral shape.

    Immutable: histories are shared between the cache, the store and strategies, and a
    failed turn must leave them as they were. Derive changed copies with ``model_copy``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role
    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None  # set on role="tool": the call this result answers
    name: str | None = None  # the tool's name on role="tool"
    is_error: bool = False  # on role="tool": the result is an error the model should see
    metadata: dict[str, Any] = Field(default_factory=dict)

    _clean_content = field_validator("content")(clean_text)
    _clean_metadata = field_validator("metadata")(clean_value)


class Usage(BaseModel):
    """Token counts of one or more model calls."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    requests: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
            requests=self.requests + other.requests,
        )


class ToolResult(BaseModel):
    """What running one tool call produced, as the model will see it."""

    call: ToolCall
    content: str
    is_error: bool = False
    duration_ms: float = 0.0

    _clean_content = field_validator("content")(clean_text)


class ChatResponse(BaseModel):
    """A model's answer.

    Providers return one per model call. `AgentOrchestrator.chat` returns one per turn,
    with usage summed over every model call of the turn, the tools it ran, the cost and
    the A/B variant.
    """

    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_results: list[ToolResult] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    model: str | None = None
    finish_reason: str | None = None
    cost: float | None = None  # USD; None when the model is not in the price table
    variant: str | None = None
    experiment: str | None = None
    latency_ms: float = 0.0
    session_id: str | None = None
    raw: Any = Field(default=None, exclude=True, repr=False)

    _clean_content = field_validator("content")(clean_text)

    def __str__(self) -> str:
        return self.content


StreamChunkType = Literal["text", "tool_call", "tool_start", "tool_end", "usage", "done"]


class StreamChunk(BaseModel):
    """One item of a streamed answer.

    - ``text``: a piece of the answer (``text``).
    - ``tool_call``: a provider finished assembling a tool call (``tool_call``).
    - ``tool_start`` / ``tool_end``: the orchestrator started or finished a tool
      (``tool_call``; ``tool_result`` on end).
    - ``usage``: token counts of one model call (``usage``).
    - ``done``: the last chunk, with the whole response (``response``).
    """

    type: StreamChunkType
    text: str = ""
    tool_call: ToolCall | None = None
    tool_result: ToolResult | None = None
    usage: Usage | None = None
    response: ChatResponse | None = None


class Context(BaseModel):
    """The conversation a compaction strategy works on."""

    messages: list[Message] = Field(default_factory=list)
    session_id: str | None = None
    model: str | None = None
    max_tokens: int | None = None  # the budget the compacted context should fit in
    metadata: dict[str, Any] = Field(default_factory=dict)
