"""``AgentOrchestrator``: the agent loop, with every policy delegated to a coordinator."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import aclosing
from typing import Any

from victor.agent import policies
from victor.agent.coordinators.analytics_coordinator import AnalyticsCoordinator
from victor.agent.coordinators.config_coordinator import ConfigCoordinator, check_session_config
from victor.agent.coordinators.context_coordinator import ContextCoordinator
from victor.agent.coordinators.middleware_coordinator import MiddlewareCoordinator
from victor.agent.coordinators.prompt_coordinator import PromptCoordinator
from victor.agent.coordinators.tool_selection_coordinator import ToolSelectionCoordinator
from victor.agent.reporting import TurnReporter
from victor.agent.turn import SessionLocks, Turn, check_overrides
from victor.config.settings import Settings
from victor.errors import ConfigError, ToolLoopLimitError
from victor.pricing import PriceTable, default_price_table
from victor.protocols import (
    ChatResponse,
    IProvider,
    ISessionStore,
    Message,
    StreamChunk,
    Tool,
    ToolCall,
    ToolResult,
)
from victor.protocols.analytics import new_session_id
from victor.protocols.tenancy import scoped_session_id
from victor.providers import provider_from_environment
from victor.tools.decorator import function_tool
from victor.tools.executor import ToolExecutor

logger = logging.getLogger(__name__)

__all__ = ["AgentOrchestrator"]


class AgentOrchestrator:
    """Runs conversations: model -> tools -> model ... -> answer.

    Each turn asks the coordinators for the session's config, the system prompt, whether
    to compact the history, and which tools to offer; it runs the tools the model calls
    (in parallel, validated, with timeouts) and emits analytics events. History is kept
    per ``session_id`` (SQLite by default) and only stored once a turn succeeds, so a
    failed turn leaves it as it was. Turns of one session run one at a time.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        provider: IProvider | None = None,
        model: str | None = None,
        tools: Iterable[Tool | Callable[..., Any]] | None = None,
        *,
        system_prompt: str | None = None,
        session_store: ISessionStore | None = None,
        price_table: PriceTable | None = None,
        _config_coordinator: ConfigCoordinator | None = None,
        _prompt_coordinator: PromptCoordinator | None = None,
        _analytics_coordinator: AnalyticsCoordinator | None = None,
        _context_coordinator: ContextCoordinator | None = None,
        _tool_selection_coordinator: ToolSelectionCoordinator | None = None,
        _middleware_coordinator: MiddlewareCoordinator | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        # Seconds for every latency measured here; a simulation passes its virtual clock.
        self.clock = clock
        self.settings = settings if settings is not None else Settings()
        self.provider = (
            provider
            if provider is not None
            else provider_from_environment(
                timeout=self.settings.request_timeout, max_retries=self.settings.max_retries
            )
        )
        self.model = model or self.settings.default_model or self.provider.default_model
        if not self.model:
            raise ConfigError(
                f"no model given: pass model=..., set VICTOR_DEFAULT_MODEL, or use a provider "
                f"with a default model ({type(self.provider).__name__} has none)"
            )
        self.system_prompt = system_prompt
        self.config_coordinator = _config_coordinator or ConfigCoordinator()
        self.prompt_coordinator = _prompt_coordinator or PromptCoordinator()
        self.context_coordinator = _context_coordinator or ContextCoordinator()
        # Runs around chat and stream alike, once the turn's config and tenant are known.
        self.middleware_coordinator = _middleware_coordinator
        if _middleware_coordinator is not None and _middleware_coordinator.orchestrator is None:
            _middleware_coordinator.orchestrator = self
        self.tool_selection_coordinator = _tool_selection_coordinator or ToolSelectionCoordinator(
            max_tools=self.settings.max_tools, cache_dir=self.settings.data_dir / "embeddings"
        )
        if _analytics_coordinator is None:
            # The embedded default: events in <data_dir>/analytics.db (or none when off).
            _analytics_coordinator = AnalyticsCoordinator.from_settings(self.settings)
        self.analytics_coordinator = _analytics_coordinator
        if session_store is None:
            from victor.sessions import session_store_from_settings

            session_store = session_store_from_settings(self.settings)
        self.session_store = session_store
        self.price_table = price_table or default_price_table()
        self.reporter = TurnReporter(
            self.analytics_coordinator, self.price_table, self.provider.name
        )
        self.executor = ToolExecutor(
            timeout=self.settings.tool_timeout,
            max_parallel=self.settings.max_parallel_tools,
            max_result_chars=self.settings.max_tool_result_chars,
        )
        self.tools: dict[str, Tool] = {}
        self._locks = SessionLocks()
        self._store_open = False
        self._closed = False
        if tools:
            self.register_tools(tools)

    # -- tools ------------------------------------------------------------------------

    def register_tools(self, tools: Iterable[Tool | Callable[..., Any]]) -> None:
        """Add tools: ``Tool`` objects or plain typed functions (wrapped as by ``@tool``)."""
        for item in tools:
            built = item if isinstance(item, Tool) else function_tool(item)
            if built.name in self.tools and self.tools[built.name] is not built:
                raise ValueError(f"a tool named {built.name!r} is already registered")
            self.tools[built.name] = built

    # -- public API -------------------------------------------------------------------

    async def chat(
        self,
        message: str,
        session_id: str | None = None,
        *,
        config: Mapping[str, Any] | None = None,
        **overrides: Any,
    ) -> ChatResponse:
        """One turn: the user's ``message`` in, the model's answer out.

        ``overrides`` (``model=``, ``temperature=``, ``max_tokens=``, ``system_prompt=``,
        ``max_tool_iterations=``, ``tool_selection=``...) apply to this turn only, on top
        of the session's config; other config keys go in ``config={...}``. A misspelt
        override is a ``TypeError``, not silently ignored.
        """
        response: ChatResponse | None = None
        async for chunk in self._turn(message, session_id, config, overrides, streaming=False):
            if chunk.type == "done":
                response = chunk.response
        assert response is not None
        return response

    async def stream(
        self,
        message: str,
        session_id: str | None = None,
        *,
        config: Mapping[str, Any] | None = None,
        **overrides: Any,
    ) -> AsyncIterator[StreamChunk]:
        """Like :meth:`chat`, yielding text as it arrives, tool starts and ends, and a last
        ``done`` chunk with the whole response.

        The session is locked until the stream ends: read it to the end, or close it
        (``async with contextlib.aclosing(orchestrator.stream(...))``) when stopping early.
        """
        turn = self._turn(message, session_id, config, overrides, streaming=True)
        async with aclosing(turn):
            async for chunk in turn:
                yield chunk

    async def record_feedback(
        self,
        session_id: str,
        score: float,
        comment: str | None = None,
        *,
        tenant_id: str | None = None,
    ) -> None:
        """Record a user's rating of a session's answers: a ``feedback`` event carrying
        the session's tenant, experiment and variant, for experiment reports."""
        session_id = scoped_session_id(session_id, tenant_id)
        await self.reporter.feedback(self.config_coordinator, session_id, score, comment)

    async def record_metric(
        self, session_id: str, name: str, value: float, *, tenant_id: str | None = None
    ) -> None:
        """Record a user-defined outcome of a session (``"resolved"``, 1.0): a ``metric``
        event carrying the session's tenant, experiment and variant."""
        session_id = scoped_session_id(session_id, tenant_id)
        await self.reporter.metric(self.config_coordinator, session_id, name, value)

    async def history(self, session_id: str, *, tenant_id: str | None = None) -> list[Message]:
        """The stored messages of a session (empty when it does not exist). With
        ``tenant_id``, only that tenant's sessions can be read: a plain id is taken as
        the tenant's own, an id of another tenant is refused."""
        return await self.session_store.load(scoped_session_id(session_id, tenant_id)) or []

    async def list_sessions(self, limit: int = 100, *, tenant_id: str | None = None) -> list[str]:
        """Session ids, the most recently updated first; only ``tenant_id``'s if given."""
        return await self.session_store.list_sessions(limit, tenant_id=tenant_id)

    async def aclose(self) -> None:
        """Store pending history, flush analytics and close the provider: the components
        given to the orchestrator are closed with it (a shared session store only when its
        last user closes)."""
        if self._closed:
            return
        self._closed = True
        self.executor.close()
        closers = [
            self.session_store.aclose,
            self.tool_selection_coordinator.aclose,
            self.analytics_coordinator.aclose,
            self.provider.aclose,
            # Database-backed providers and contributors reconnect if used again, so a
            # coordinator shared by several orchestrators survives one closing.
            getattr(self.config_coordinator, "aclose", None),
            getattr(self.prompt_coordinator, "aclose", None),
        ]
        if self.middleware_coordinator is not None:
            closers.append(self.middleware_coordinator.aclose)
        for close in closers:
            if close is None:
                continue
            try:
                await close()
            except Exception:
                logger.exception("error while closing %r", close)

    async def __aenter__(self) -> AgentOrchestrator:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- the turn ---------------------------------------------------------------------

    async def _turn(
        self,
        message: str,
        session_id: str | None,
        config: Mapping[str, Any] | None,
        overrides: dict[str, Any],
        *,
        streaming: bool,
    ) -> AsyncIterator[StreamChunk]:
        if not isinstance(message, str):
            raise TypeError(f"message must be a string, not {type(message).__name__}")
        if not message.strip():
            raise ValueError("message is empty")
        if self._closed:
            raise RuntimeError("the orchestrator is closed")
        if overrides:
            check_overrides(overrides)
        if config:
            overrides = {**config, **overrides}
        generated = session_id is None
        if session_id is None:
            session_id = new_session_id()
        elif not isinstance(session_id, str) or not session_id:
            raise ValueError(f"session_id must be a non-empty string, not {session_id!r}")
        # One source of truth for the tenant: the session id, scoped by an explicit
        # tenant_id (a contradiction is refused before anything runs).
        session_id = scoped_session_id(session_id, overrides.get("tenant_id"))
        async with self._locks.hold(session_id):
            try:
                turn = await self._prepare(message, session_id, overrides, generated)
            except Exception as exc:
                self.reporter.prepare_failed(session_id, exc)
                raise
            if self.middleware_coordinator is not None:
                early = await policies.run_middleware(self, turn, streaming)
                if early is not None:
                    if streaming and early.content:
                        yield StreamChunk(type="text", text=early.content)
                    yield StreamChunk(type="done", response=early)
                    return
            try:
                async for chunk in self._loop(turn, streaming):
                    yield chunk
            except Exception as exc:
                self.reporter.failed(turn, exc)
                raise

    async def _prepare(
        self, message: str, session_id: str, overrides: dict[str, Any], generated: bool
    ) -> Turn:
        config = await self.config_coordinator.load_config(
            session_id, config_override=overrides or None
        )
        if not isinstance(config, dict):
            raise ConfigError(
                f"{type(self.config_coordinator).__name__}.load_config returned "
                f"{type(config).__name__}, not a dict"
            )
        if config:
            await check_session_config(
                self.config_coordinator,
                session_id,
                config,
                config_override=overrides,
                choices=functools.partial(policies.config_choices, self),
            )
        turn = Turn.start(
            session_id,
            message,
            config,
            default_model=self.model,
            settings=self.settings,
            analytics=self.analytics_coordinator.enabled,
            started=self.clock(),
        )
        if not self._store_open:  # fail before a model call is paid for
            await self.session_store.open()
            self._store_open = True
        stored = None if generated else await self.session_store.read(session_id)
        if stored is None:
            turn.is_new = True
        else:
            turn.history, turn.version = stored
        turn.new_messages.append(Message(role="user", content=message))
        return turn

    async def _call_model(
        self, turn: Turn, messages: list[Message], streaming: bool
    ) -> AsyncIterator[StreamChunk]:
        options: dict[str, Any] = {}
        if turn.temperature is not None:
            options["temperature"] = turn.temperature
        if turn.max_tokens is not None:
            options["max_tokens"] = turn.max_tokens
        start = self.clock()
        if streaming:
            response = None
            stream = self.provider.stream(messages, model=turn.model, tools=turn.tools, **options)
            async with aclosing(stream):
                async for chunk in stream:
                    if chunk.type == "done":
                        response = chunk.response
                    elif chunk.type == "text":
                        yield chunk
            if response is None:
                from victor.errors import ProviderResponseError

                raise ProviderResponseError(
                    "the stream ended without a final response", provider=self.provider.name
                )
        else:
            response = await self.provider.chat(
                messages, model=turn.model, tools=turn.tools, **options
            )
        self.reporter.model_call(turn, response, (self.clock() - start) * 1000)
        yield StreamChunk(type="done", response=response)

    async def _loop(self, turn: Turn, streaming: bool) -> AsyncIterator[StreamChunk]:
        system = await policies.system_prompt(self, turn)
        await policies.compact(self, turn)
        await policies.select_tools(self, turn)
        head = [Message(role="system", content=system)] if system else []
        # Only the tools offered this turn may run: a selection policy (cost, domain,
        # tenant) is enforced, not advisory.
        offered = {t.name: t for t in turn.tools}
        calls: list[ToolCall] = []
        results: list[ToolResult] = []
        rounds = 0
        while True:
            turn.iterations += 1
            response: ChatResponse | None = None
            async for chunk in self._call_model(
                turn, head + turn.history + turn.new_messages, streaming
            ):
                if chunk.type == "done":
                    response = chunk.response
                else:
                    yield chunk
            assert response is not None
            self.context_coordinator.observe_usage(
                turn.session_id, len(turn.history) + len(turn.new_messages), response.usage
            )
            if not response.tool_calls:
                break
            if rounds >= turn.max_iterations:
                raise ToolLoopLimitError(turn.max_iterations)
            rounds += 1
            turn.new_messages.append(
                Message(role="assistant", content=response.content, tool_calls=response.tool_calls)
            )
            if streaming:
                for call in response.tool_calls:
                    yield StreamChunk(type="tool_start", tool_call=call)
            step = await self.executor.run(response.tool_calls, offered)
            for result in step:
                turn.new_messages.append(
                    Message(
                        role="tool",
                        content=result.content,
                        tool_call_id=result.call.id,
                        name=result.call.name,
                        is_error=result.is_error,
                    )
                )
                self.reporter.tool_result(turn, result)
                if streaming:
                    yield StreamChunk(type="tool_end", tool_call=result.call, tool_result=result)
            calls.extend(response.tool_calls)
            results.extend(step)
        turn.new_messages.append(Message(role="assistant", content=response.content))
        await self._store(turn)
        yield StreamChunk(type="done", response=self._finish(turn, response, calls, results))

    async def _store(self, turn: Turn) -> None:
        """Commit the turn, if the session is still at the version it read (another
        process may have moved it on: then nothing is stored, SessionConflictError)."""
        messages = turn.history + turn.new_messages if turn.compacted else turn.new_messages
        await self.session_store.write(
            turn.session_id, messages, expected_version=turn.version, replace=turn.compacted
        )

    def _finish(
        self, turn: Turn, response: ChatResponse, calls: list[ToolCall], results: list[ToolResult]
    ) -> ChatResponse:
        model = response.model or turn.model
        cost = self.reporter.cost(turn, model)
        latency_ms = (self.clock() - turn.started) * 1000
        self.reporter.finished(turn, model, cost, latency_ms)
        return ChatResponse(
            content=response.content,
            tool_calls=calls,
            tool_results=results,
            usage=turn.usage,
            model=model,
            finish_reason=response.finish_reason,
            cost=cost,
            variant=turn.variant,
            experiment=turn.experiment,
            latency_ms=latency_ms,
            session_id=turn.session_id,
            raw=response.raw,
        )
