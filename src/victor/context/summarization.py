"""Older turns replaced by a model-written summary."""

from __future__ import annotations

from victor.context.groups import Group, assemble, recent_start, required, split_groups
from victor.context.strategies import BaseCompactionStrategy
from victor.errors import ConfigError
from victor.protocols import Context, IProvider, Message
from victor.protocols.tokens import MESSAGE_OVERHEAD_TOKENS

__all__ = [
    "PROVIDER_KEY",
    "SUMMARY_MARKER",
    "SUMMARY_PREFIX",
    "SummarizationCompactionStrategy",
]

# ``Context.metadata`` key: the orchestrator's provider, the default summariser.
PROVIDER_KEY = "provider"
# ``Message.metadata`` key set on a summary message.
SUMMARY_MARKER = "compaction_summary"
SUMMARY_PREFIX = "Summary of the earlier conversation:\n"

DEFAULT_INSTRUCTIONS = (
    "You compress conversations between a user and an AI assistant. Summarise the "
    "transcript below for the assistant, who will continue the conversation without it: "
    "keep facts, names, numbers, decisions, open questions and what tools returned; drop "
    "pleasantries. Write plain prose, at most {words} words."
)

# A summary smaller than this is not worth a model call: the strategy truncates instead.
_MIN_SUMMARY_TOKENS = 32


class SummarizationCompactionStrategy(BaseCompactionStrategy):
    """Keeps the last ``recent_turns`` turns and replaces the older messages (system
    messages apart) by one summary written by a model.

    The summariser is ``provider`` / ``model`` when given (a cheaper model, say), else the
    orchestrator's own provider and the turn's model. The summary is a user message
    starting with :data:`SUMMARY_PREFIX` (marked in its metadata), placed where the first
    summarised message stood; a later compaction summarises it again with what followed.
    It gets at most ``max_summary_tokens`` of the budget and is clipped to what it got.
    The call's usage is reported in the result's ``metadata["usage"]``, so the turn counts
    it in its usage, cost and analytics. A failed call raises: the context coordinator
    then truncates for that turn.
    """

    def __init__(
        self,
        provider: IProvider | None = None,
        model: str | None = None,
        *,
        recent_turns: int = 2,
        max_summary_tokens: int = 512,
        max_transcript_tokens: int = 16_000,
        instructions: str = DEFAULT_INSTRUCTIONS,
    ) -> None:
        if recent_turns < 0:
            raise ValueError(f"recent_turns must be >= 0, not {recent_turns}")
        if max_summary_tokens < _MIN_SUMMARY_TOKENS:
            raise ValueError(
                f"max_summary_tokens must be >= {_MIN_SUMMARY_TOKENS}, not {max_summary_tokens}"
            )
        self.provider = provider
        self.model = model
        self.recent_turns = recent_turns
        self.max_summary_tokens = max_summary_tokens
        self.max_transcript_tokens = max_transcript_tokens
        self.instructions = instructions

    async def compact(self, context: Context) -> Context:
        budget = context.max_tokens
        if budget is None:
            return context
        groups = split_groups(context.messages)
        if sum(g.tokens for g in groups) <= budget:  # it fits: nothing to summarise
            return context
        keep = required(groups)
        used = sum(groups[i].tokens for i in keep)
        reserve = min(self.max_summary_tokens, budget - used)
        first_recent = recent_start(groups, self.recent_turns)
        used = self._add_while_fits(
            groups,
            range(len(groups) - 1, first_recent - 1, -1),
            keep,
            used,
            budget - max(reserve, 0),
            stop_at_first_misfit=True,
        )
        older = [i for i in range(len(groups)) if i not in keep]
        if not older:
            return context.model_copy(update={"messages": assemble(groups, keep)})
        if reserve < _MIN_SUMMARY_TOKENS:  # no room for a summary: plain truncation
            return context.model_copy(update={"messages": assemble(groups, keep)})
        provider = self.provider or context.metadata.get(PROVIDER_KEY)
        model = self.model or context.model
        if not isinstance(provider, IProvider) or not model:
            raise ConfigError(
                "SummarizationCompactionStrategy needs a provider and a model: pass "
                "provider=... and model=..., or run it from an orchestrator"
            )
        response = await provider.chat(
            [
                Message(role="system", content=self._instructions(reserve)),
                Message(role="user", content=self._transcript([groups[i] for i in older])),
            ],
            model=model,
            max_tokens=reserve,
        )
        summary = self._summary_message(response.content, reserve)
        messages = assemble(groups, keep)
        # The summary stands where the first summarised message stood.
        at = sum(len(groups[i].messages) for i in keep if i < older[0])
        messages.insert(at, summary)
        metadata = {
            **context.metadata,
            "usage": response.usage,
            "usage_model": response.model or model,
        }
        return context.model_copy(update={"messages": messages, "metadata": metadata})

    def _instructions(self, reserve: int) -> str:
        return self.instructions.format(words=max(20, reserve * 3 // 4))

    def _transcript(self, groups: list[Group]) -> str:
        """The summarised messages as text, the newest kept when it is too long."""
        lines = []
        for group in groups:
            for m in group.messages:
                text = m.content
                if m.metadata.get(SUMMARY_MARKER) and text.startswith(SUMMARY_PREFIX):
                    text = text[len(SUMMARY_PREFIX) :]
                    lines.append(f"[earlier summary] {text}")
                    continue
                calls = ", ".join(
                    f"{c.name}({c.raw_arguments or c.arguments})" for c in m.tool_calls
                )
                who = f"tool {m.name}" if m.role == "tool" else m.role
                lines.append(f"[{who}] {text}" + (f" [calls: {calls}]" if calls else ""))
        transcript = "\n".join(lines)
        limit = self.max_transcript_tokens * 4
        return transcript if len(transcript) <= limit else "..." + transcript[-limit:]

    def _summary_message(self, text: str, reserve: int) -> Message:
        content = SUMMARY_PREFIX + text.strip()
        # Clipped to the room given: the result fits the budget whatever the model wrote
        # ((len + 3) // 4 + 4 <= reserve).
        room = 4 * (reserve - MESSAGE_OVERHEAD_TOKENS)
        if len(content) > room:
            content = content[: room - 3] + "..."
        return Message(role="user", content=content, metadata={SUMMARY_MARKER: True})
