"""What a turn asks of the policy coordinators: the strategy names a session's config may
pick, the middleware's verdict, the system prompt, compaction and the tools offered.

Each function reads the coordinators from the orchestrator at call time (they are its
public attributes, and may be replaced after it is made) and records on the turn what it
decided.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from victor.agent.coordinators.tool_selection_coordinator import BUILTIN_STRATEGIES
from victor.agent.turn import Turn
from victor.config.schema import CONTEXT_COMPACTION_STRATEGY, TOOL_SELECTION_STRATEGY
from victor.protocols import ChatResponse, PromptContext
from victor.providers.catalog import context_window

if TYPE_CHECKING:
    from victor.agent.orchestrator import AgentOrchestrator

__all__ = ["compact", "config_choices", "run_middleware", "select_tools", "system_prompt"]


def config_choices(orchestrator: AgentOrchestrator) -> dict[tuple[str, ...], Collection[str]]:
    """The strategy names a session's config may pick, as registered on ``orchestrator``."""
    selection = orchestrator.tool_selection_coordinator
    choices: dict[tuple[str, ...], Collection[str]] = {
        TOOL_SELECTION_STRATEGY: {
            *BUILTIN_STRATEGIES,
            "default",
            *getattr(selection, "strategies", ()),
        }
    }
    compaction = getattr(orchestrator.context_coordinator, "strategies", None)
    if compaction is not None:
        choices[CONTEXT_COMPACTION_STRATEGY] = compaction
    return choices


async def run_middleware(
    orchestrator: AgentOrchestrator, turn: Turn, streaming: bool
) -> ChatResponse | None:
    """The middleware's early answer, if one gave it; a middleware that raises fails the
    turn before any model call."""
    middleware = orchestrator.middleware_coordinator
    assert middleware is not None
    kwargs = {"session_id": turn.session_id, "tenant_id": turn.tenant_id, "config": turn.config}
    try:
        value = await middleware.run(
            orchestrator.stream if streaming else orchestrator.chat, (turn.query,), kwargs
        )
        return None if value is None else middleware.as_response(value, turn.session_id)
    except Exception as exc:
        orchestrator.reporter.failed(turn, exc, "middleware")
        raise


async def system_prompt(orchestrator: AgentOrchestrator, turn: Turn) -> str:
    """The turn's system prompt: the base (the session's, else the orchestrator's) with
    the prompt coordinator's contributions."""
    base = turn.config.get("system_prompt") or orchestrator.system_prompt
    if not orchestrator.prompt_coordinator.contributors:
        return base or ""
    context = PromptContext(
        session_id=turn.session_id,
        tenant_id=turn.tenant_id,
        query=turn.query,
        model=turn.model,
        variant=turn.variant,
        config=turn.config,
    )
    return await orchestrator.prompt_coordinator.build_system_prompt(context, base)


async def compact(orchestrator: AgentOrchestrator, turn: Turn) -> None:
    """Compact the turn's history when it passes the threshold of the model's window."""
    settings = orchestrator.settings
    threshold = turn.config.get("context_compaction_threshold")
    start = orchestrator.clock()
    compaction = await orchestrator.context_coordinator.maybe_compact(
        turn.history,
        turn.new_messages,
        context_window=context_window(turn.model, settings.context_window),
        threshold=threshold or settings.context_compaction_threshold,
        session_id=turn.session_id,
        model=turn.model,
        strategy=turn.config.get("context_compaction_strategy"),
        query=turn.query,
        provider=orchestrator.provider,
    )
    if compaction is not None:
        turn.history = compaction.messages
        turn.compacted = True
        if compaction.usage is not None:
            elapsed_ms = (orchestrator.clock() - start) * 1000
            orchestrator.reporter.compaction(turn, compaction, elapsed_ms)


async def select_tools(orchestrator: AgentOrchestrator, turn: Turn) -> None:
    """The tools offered this turn, chosen by the tool selection coordinator."""
    if not orchestrator.tools:
        return
    selection = await orchestrator.tool_selection_coordinator.select_for_turn(
        turn.query, list(orchestrator.tools.values()), config=turn.config, history=turn.history
    )
    turn.tools = selection.tools
    if selection.used != "all":  # "all": nothing was ranked
        orchestrator.reporter.tool_selection(turn, selection.event_data())
