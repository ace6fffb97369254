"""Recipe 4: smart context compaction -- long conversations kept within the model's window.

Runs offline (a scripted model stands in for a real one, history in SQLite):

    python examples/recipe_4_context_compaction.py

The orchestrator compacts a session once it passes ``context_compaction_threshold`` x the
model's context window (the provider's own token count of the last call is the truth).
Here the window is tiny so that compaction happens within a few turns. Three strategies
run side by side: keep-recent-plus-keywords, a model-written summary (counted in the
turn's usage and cost), and a custom strategy built on ``BaseCompactionStrategy``.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from victor.agent.coordinators import ContextCoordinator
from victor.agent.coordinators.context_coordinator import (
    BaseCompactionStrategy,
    KeepRecentCompactionStrategy,
    SummarizationCompactionStrategy,
)
from victor.agent.orchestrator import AgentOrchestrator
from victor.config.settings import Settings
from victor.protocols import Context, Message
from victor.providers import FunctionProvider

QUESTIONS = [
    "Our invoice INV-7781 for ACME is overdue. Who do we contact?",
    "Unrelated: summarise the plot of Hamlet in detail.",
    "And what is a good recipe for a tomato pasta?",
    "Give me three tips for a job interview.",
    "Back to the invoice: draft a reminder to ACME.",
]


def model(messages: list[Message], tools: object) -> str:
    """A stand-in model: summaries when asked to summarise, long answers otherwise."""
    if messages[0].role == "system" and "compress conversations" in messages[0].content:
        return "The user chased overdue invoice INV-7781 (ACME) and asked off-topic questions."
    return f"Answer to: {messages[-1].content[:40]} " + "lorem ipsum " * 40


class KeepQuestionsOnly(BaseCompactionStrategy):
    """A custom strategy: keep system messages and user questions, drop the answers."""

    async def compact(self, context: Context) -> Context:
        kept = [m for m in context.messages if m.role in ("system", "user")]
        return context.model_copy(update={"messages": kept})


async def run(name: str, strategy: BaseCompactionStrategy, data_dir: Path) -> None:
    settings = Settings(data_dir=data_dir, context_window=600, context_compaction_threshold=0.8)
    async with AgentOrchestrator(
        settings=settings,
        provider=FunctionProvider(model),
        model="local-model",
        _context_coordinator=ContextCoordinator(compaction_strategy=strategy),
    ) as orchestrator:
        for question in QUESTIONS:
            response = await orchestrator.chat(question, session_id=f"recipe-4-{name}")
        history = await orchestrator.history(f"recipe-4-{name}")
    print(f"\n== {name}: {len(history)} messages kept after {len(QUESTIONS)} turns")
    for message in history:
        print(f"  {message.role:9} {message.content[:70].replace(chr(10), ' ')}")
    usage = response.usage
    print(f"  last turn: {usage.requests} model call(s), {usage.total_tokens} tokens")


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        await run("keep-recent", KeepRecentCompactionStrategy(recent_turns=1), data_dir)
        await run("summary", SummarizationCompactionStrategy(recent_turns=1), data_dir)
        await run("custom", KeepQuestionsOnly(), data_dir)


if __name__ == "__main__":
    asyncio.run(main())
