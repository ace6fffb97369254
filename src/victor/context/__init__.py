"""Context compaction: the strategies that shrink a conversation to a token budget.

Built-in strategies, by the name a session config gives in ``context_compaction_strategy``:
``truncation``, ``keep_recent``, ``summarization`` and ``semantic`` (see
:data:`COMPACTION_STRATEGIES`). The semantic strategy needs the ``[embeddings]`` extra,
loaded only when it runs.
"""

from __future__ import annotations

from victor.context.groups import QUERY_KEY, Group, message_groups
from victor.context.semantic import SemanticCompactionStrategy
from victor.context.strategies import (
    BaseCompactionStrategy,
    KeepRecentCompactionStrategy,
    TruncationCompactionStrategy,
)
from victor.context.summarization import (
    PROVIDER_KEY,
    SUMMARY_MARKER,
    SummarizationCompactionStrategy,
)

__all__ = [
    "COMPACTION_STRATEGIES",
    "PROVIDER_KEY",
    "QUERY_KEY",
    "SUMMARY_MARKER",
    "BaseCompactionStrategy",
    "Group",
    "KeepRecentCompactionStrategy",
    "SemanticCompactionStrategy",
    "SummarizationCompactionStrategy",
    "TruncationCompactionStrategy",
    "message_groups",
]

# The built-in strategies by config name.
COMPACTION_STRATEGIES: dict[str, type[BaseCompactionStrategy]] = {
    "truncation": TruncationCompactionStrategy,
    "keep_recent": KeepRecentCompactionStrategy,
    "summarization": SummarizationCompactionStrategy,
    "semantic": SemanticCompactionStrategy,
}
