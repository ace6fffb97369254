"""Model providers, all behind :class:`victor.protocols.IProvider`.

The real providers import their SDKs only when first used, so ``import victor`` stays fast.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from victor.errors import ConfigError
from victor.protocols import IProvider
from victor.providers.function import FunctionProvider
from victor.providers.scripted import ScriptedProvider
from victor.providers.simulated import SimulatedClock, SimulatedProvider

if TYPE_CHECKING:
    from victor.providers._retry import RetryPolicy
    from victor.providers.anthropic import AnthropicProvider
    from victor.providers.fallback import FallbackProvider
    from victor.providers.openai import OpenAIProvider

_LAZY = {
    "OpenAIProvider": "victor.providers.openai",
    "AnthropicProvider": "victor.providers.anthropic",
    "FallbackProvider": "victor.providers.fallback",
    "RetryPolicy": "victor.providers._retry",
}

__all__ = [
    "AnthropicProvider",
    "FallbackProvider",
    "FunctionProvider",
    "OpenAIProvider",
    "RetryPolicy",
    "ScriptedProvider",
    "SimulatedClock",
    "SimulatedProvider",
]


def provider_from_environment(*, timeout: float, max_retries: int) -> IProvider:
    """OpenAI when ``OPENAI_API_KEY`` is set, else Anthropic when ``ANTHROPIC_API_KEY``
    is; otherwise a ConfigError saying what to do."""
    if os.environ.get("OPENAI_API_KEY"):
        from victor.providers.openai import OpenAIProvider

        return OpenAIProvider(timeout=timeout, max_retries=max_retries)
    if os.environ.get("ANTHROPIC_API_KEY"):
        from victor.providers.anthropic import AnthropicProvider

        return AnthropicProvider(timeout=timeout, max_retries=max_retries)
    raise ConfigError(
        "no provider given: pass provider=..., or set OPENAI_API_KEY or ANTHROPIC_API_KEY "
        "(for a local OpenAI-compatible server use OpenAIProvider(base_url=...))"
    )


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'victor.providers' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
