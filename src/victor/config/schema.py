"""The keys a session's config may set, checked by one schema wherever config comes from
(files, environment variables, tenant tables, ``chat(config=...)``).

Values are checked strictly, so a typo (``temperature: hot``, ``enable_analytics:
"false"``) is an error naming the key rather than a surprise. Keys the schema does not
know are kept for coordinators, strategies and prompt contributors.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "KNOWN_KEYS",
    "NAMED_CHOICES",
    "SECTIONS",
    "SessionConfig",
    "ToolSelectionConfig",
    "config_problems",
    "unknown_keys",
]

# Sections of a config file that overlay the top-level keys for one tenant or session.
TENANTS = "tenants"
SESSIONS = "sessions"
SECTIONS = (TENANTS, SESSIONS)

# Keys whose value names something registered at run time (a strategy), as paths.
TOOL_SELECTION_STRATEGY = ("tool_selection", "strategy")
CONTEXT_COMPACTION_STRATEGY = ("context_compaction_strategy",)
NAMED_CHOICES = (TOOL_SELECTION_STRATEGY, CONTEXT_COMPACTION_STRATEGY)


class ToolSelectionConfig(BaseModel):
    """``tool_selection``: which strategy picks the tools offered to the model."""

    model_config = ConfigDict(extra="allow", strict=True)

    strategy: str | None = Field(default=None, min_length=1)
    max_tools: int | None = Field(default=None, ge=1)
    hybrid_alpha: float | None = Field(default=None, ge=0.0, le=1.0)
    pinned: list[str] | None = None


class SessionConfig(BaseModel):
    """The config keys Victor applies itself."""

    model_config = ConfigDict(extra="allow", strict=True)

    model: str | None = Field(default=None, min_length=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, gt=0)
    system_prompt: str | None = None
    max_tool_iterations: int | None = Field(default=None, ge=1)
    tool_selection: ToolSelectionConfig | None = None
    context_compaction_strategy: str | None = Field(default=None, min_length=1)
    context_compaction_threshold: float | None = Field(default=None, gt=0.0, le=1.0)
    enable_analytics: bool | None = None
    tenant_id: str | None = None
    variant: str | None = None
    experiment: str | None = None


KNOWN_KEYS = frozenset(SessionConfig.model_fields)
_KNOWN_NESTED = {"tool_selection": frozenset(ToolSelectionConfig.model_fields)}


def _value_at(config: Mapping[str, Any], path: Iterable[str]) -> Any:
    node: Any = config
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def config_problems(
    config: Mapping[str, Any],
    choices: Mapping[tuple[str, ...], Collection[str]] | None = None,
) -> list[tuple[tuple[str, ...], str]]:
    """What is wrong with ``config``: ``(key path, message)`` pairs, none when it is good.

    ``choices`` gives the accepted names of keys such as ``tool_selection.strategy``
    (the strategies registered where the config is used)."""
    problems: list[tuple[tuple[str, ...], str]] = []
    try:
        SessionConfig.model_validate(config)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            path = tuple(str(p) for p in err["loc"])
            problems.append((path, f"{err['msg']} (got {err['input']!r:.80})"))
    for path, accepted in (choices or {}).items():
        name = _value_at(config, path)
        if isinstance(name, str) and name not in accepted:
            known = ", ".join(sorted(accepted))
            problems.append((path, f"unknown name {name!r}; accepted: {known}"))
    return problems


def unknown_keys(config: Mapping[str, Any]) -> list[str]:
    """Keys the schema does not know (kept, but often a typo), each with a hint."""
    found = []
    for key, value in config.items():
        if key not in KNOWN_KEYS and key not in SECTIONS:
            close = difflib.get_close_matches(key, KNOWN_KEYS, 1)
            found.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        elif key in _KNOWN_NESTED and isinstance(value, Mapping):
            for sub in value:
                if sub not in _KNOWN_NESTED[key]:
                    close = difflib.get_close_matches(sub, _KNOWN_NESTED[key], 1)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    found.append(f"'{key}.{sub}'{hint}")
    return found


def format_path(path: Iterable[str]) -> str:
    return ".".join(path)
