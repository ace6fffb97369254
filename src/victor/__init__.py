"""Victor: a coordinator-based orchestrator for LLM agents in production.

```python
from victor import AgentOrchestrator, Settings, tool
```
Names are imported on first use, so ``import victor`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from victor.__about__ import __version__

if TYPE_CHECKING:
    from victor.agent.coordinators import (
        AnalyticsCoordinator,
        ConfigCoordinator,
        ContextCoordinator,
        MiddlewareCoordinator,
        PromptCoordinator,
        ToolSelectionCoordinator,
    )
    from victor.agent.multi_tenant import MultiTenantOrchestrator
    from victor.agent.orchestrator import AgentOrchestrator
    from victor.config.settings import Settings
    from victor.protocols import ChatResponse, Message, StreamChunk, Tool, Usage
    from victor.providers import (
        AnthropicProvider,
        FallbackProvider,
        FunctionProvider,
        OpenAIProvider,
        ScriptedProvider,
        SimulatedProvider,
    )
    from victor.tools import tool

_EXPORTS = {
    "AgentOrchestrator": "victor.agent.orchestrator",
    "MultiTenantOrchestrator": "victor.agent.multi_tenant",
    "Settings": "victor.config.settings",
    "tool": "victor.tools",
    "Tool": "victor.protocols",
    "Message": "victor.protocols",
    "ChatResponse": "victor.protocols",
    "StreamChunk": "victor.protocols",
    "Usage": "victor.protocols",
    "AnalyticsCoordinator": "victor.agent.coordinators",
    "ConfigCoordinator": "victor.agent.coordinators",
    "ContextCoordinator": "victor.agent.coordinators",
    "MiddlewareCoordinator": "victor.agent.coordinators",
    "PromptCoordinator": "victor.agent.coordinators",
    "ToolSelectionCoordinator": "victor.agent.coordinators",
    "OpenAIProvider": "victor.providers",
    "AnthropicProvider": "victor.providers",
    "FallbackProvider": "victor.providers",
    "ScriptedProvider": "victor.providers",
    "FunctionProvider": "victor.providers",
    "SimulatedProvider": "victor.providers",
}

__all__ = [
    "AgentOrchestrator",
    "AnalyticsCoordinator",
    "AnthropicProvider",
    "ChatResponse",
    "ConfigCoordinator",
    "ContextCoordinator",
    "FallbackProvider",
    "FunctionProvider",
    "Message",
    "MiddlewareCoordinator",
    "MultiTenantOrchestrator",
    "OpenAIProvider",
    "PromptCoordinator",
    "ScriptedProvider",
    "Settings",
    "SimulatedProvider",
    "StreamChunk",
    "Tool",
    "ToolSelectionCoordinator",
    "Usage",
    "__version__",
    "tool",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'victor' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
