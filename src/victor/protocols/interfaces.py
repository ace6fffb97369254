"""The interfaces users implement to change a policy. Each is an abstract base class."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from typing import Any, NamedTuple

from victor.protocols.messages import ChatResponse, Context, Message, StreamChunk
from victor.protocols.prompt import PromptContext
from victor.protocols.tools import Tool


class IProvider(ABC):
    """A language model behind some API."""

    name: str = "provider"
    # The model used when neither the orchestrator nor the session config names one.
    default_model: str | None = None

    @abstractmethod
    async def chat(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        tools: Sequence[Tool] = (),
        temperature: float | None = None,
        max_tokens: int | None = None,
        **options: Any,
    ) -> ChatResponse:
        """One model call: the conversation so far in, the model's response out."""

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        tools: Sequence[Tool] = (),
        temperature: float | None = None,
        max_tokens: int | None = None,
        **options: Any,
    ) -> AsyncIterator[StreamChunk]:
        """One streamed model call. The last chunk is ``done`` with the whole response.

        The default calls :meth:`chat` and yields its answer as one piece.
        """
        response = await self.chat(
            messages,
            model=model,
            tools=tools,
            temperature=temperature,
            max_tokens=max_tokens,
            **options,
        )
        if response.content:
            yield StreamChunk(type="text", text=response.content)
        for call in response.tool_calls:
            yield StreamChunk(type="tool_call", tool_call=call)
        yield StreamChunk(type="usage", usage=response.usage)
        yield StreamChunk(type="done", response=response)

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Close HTTP clients and other resources."""


class IToolSelectionCoordinator(ABC):
    """What a selection strategy may ask of the coordinator running it: the built-in
    rankings, best first. ``k`` caps the count (None: the configured ``max_tools``)."""

    @abstractmethod
    async def _keyword_selection(
        self, query: str, tools: Sequence[Tool], k: int | None = None
    ) -> list[Tool]: ...

    @abstractmethod
    async def _semantic_selection(
        self, query: str, tools: Sequence[Tool], k: int | None = None
    ) -> list[Tool]: ...

    @abstractmethod
    async def _hybrid_selection(
        self, query: str, tools: Sequence[Tool], k: int | None = None
    ) -> list[Tool]: ...

    @abstractmethod
    async def select_tools(
        self,
        query: str,
        tools: Sequence[Tool],
        k: int | None = None,
        strategy: str | None = None,
    ) -> list[Tool]: ...


class IToolSelectionStrategy(ABC):
    """Chooses which tools the model is offered this turn."""

    @abstractmethod
    async def select_tools(
        self,
        query: str,
        available_tools: list[Tool],
        selection_coordinator: IToolSelectionCoordinator,
    ) -> list[Tool]:
        """Return the tools to offer, best first."""


class IConfigProvider(ABC):
    """A source of per-session configuration. Higher priority wins when merged."""

    def priority(self) -> int:
        return 0

    @abstractmethod
    async def get_config(self, session_id: str) -> dict[str, Any]: ...


class IPromptContributor(ABC):
    """Adds a section to the system prompt. Higher priority comes first."""

    def priority(self) -> int:
        return 0

    @abstractmethod
    async def get_contribution(self, context: PromptContext) -> str: ...


class ICompactionStrategy(ABC):
    """Shrinks a conversation that has grown past the model's budget."""

    @abstractmethod
    async def compact(self, context: Context) -> Context: ...


class IEmbeddingService(ABC):
    """Turns texts into vectors (unit length, so a dot product is the cosine)."""

    dimension: int = 0
    model_name: str = "embedding"

    @abstractmethod
    async def embed_batch(self, texts: Sequence[str]) -> Any:
        """Embed many texts; returns an array-like of shape (len(texts), dimension)."""

    async def embed(self, text: str) -> Any:
        return (await self.embed_batch([text]))[0]


class StoredSession(NamedTuple):
    """A session as a store holds it: its messages and the version they are at."""

    messages: list[Message]
    # Counts the session's committed writes: a writer states the version it read, and a
    # store refuses the write if another writer got there first.
    version: int


class ISessionStore(ABC):
    """Keeps the history of each conversation.

    Writes are optimistic: :meth:`write` with ``expected_version`` (the version the turn
    read, 0 for a session that did not exist) stores nothing and raises
    :class:`~victor.errors.SessionConflictError` when the session has moved on. That is
    how turns of one session stay in order across processes and hosts.
    """

    @abstractmethod
    async def read(self, session_id: str) -> StoredSession | None:
        """The session's messages and version, or None when it does not exist."""

    @abstractmethod
    async def write(
        self,
        session_id: str,
        messages: Sequence[Message],
        *,
        expected_version: int | None = None,
        replace: bool = False,
    ) -> int:
        """Append ``messages`` (or ``replace`` the whole history, after compaction) and
        return the new version. With ``expected_version``, only if the session is still
        at that version. Returns once the write is committed, unless the store was made
        write-behind on purpose."""

    @abstractmethod
    async def delete(self, session_id: str) -> bool:
        """Forget a session; False when there was none."""

    @abstractmethod
    async def list_sessions(self, limit: int = 100, *, tenant_id: str | None = None) -> list[str]:
        """The most recently updated sessions first; only ``tenant_id``'s when given."""

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Connect or open files, so that a store that cannot work fails before a turn
        spends anything. Called again, it does nothing."""

    async def flush(self) -> None:  # noqa: B027 - optional hook
        """Wait until every accepted write is stored."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Flush pending writes and close."""

    # Shorthands over read and write.

    async def load(self, session_id: str) -> list[Message] | None:
        """The session's messages, or None when the session does not exist."""
        stored = await self.read(session_id)
        return None if stored is None else stored.messages

    async def append(self, session_id: str, messages: Sequence[Message]) -> None:
        """Add messages at the end (creates the session if needed)."""
        await self.write(session_id, messages)

    async def create(self, session_id: str, messages: Sequence[Message]) -> None:
        """Store the first messages of a session that must not exist yet."""
        await self.write(session_id, messages, expected_version=0)

    async def replace(self, session_id: str, messages: Sequence[Message]) -> None:
        """Replace the whole history."""
        await self.write(session_id, messages, replace=True)
