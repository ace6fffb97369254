"""Interfaces and data models shared by every part of Victor.

Nothing here depends on any other part of the package but :mod:`victor.errors`.
"""

from victor.protocols.analytics import (
    AnalyticsEvent,
    EventType,
    ExportResult,
    IAnalyticsExporter,
    new_event_id,
)
from victor.protocols.interfaces import (
    ICompactionStrategy,
    IConfigProvider,
    IEmbeddingService,
    IPromptContributor,
    IProvider,
    ISessionStore,
    IToolSelectionCoordinator,
    IToolSelectionStrategy,
    StoredSession,
)
from victor.protocols.messages import (
    ChatResponse,
    Context,
    Message,
    Role,
    StreamChunk,
    ToolCall,
    ToolResult,
    Usage,
)
from victor.protocols.prompt import PromptContext
from victor.protocols.tools import CostTier, Tool

__all__ = [
    "AnalyticsEvent",
    "ChatResponse",
    "Context",
    "CostTier",
    "EventType",
    "ExportResult",
    "IAnalyticsExporter",
    "ICompactionStrategy",
    "IConfigProvider",
    "IEmbeddingService",
    "IPromptContributor",
    "IProvider",
    "ISessionStore",
    "IToolSelectionCoordinator",
    "IToolSelectionStrategy",
    "Message",
    "PromptContext",
    "Role",
    "StoredSession",
    "StreamChunk",
    "Tool",
    "ToolCall",
    "ToolResult",
    "Usage",
    "new_event_id",
]
