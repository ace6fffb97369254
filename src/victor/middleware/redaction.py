"""Secrets kept out of logs: API keys and tokens in text, secret-named config keys."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["REDACTED", "redact_mapping", "redact_text"]

REDACTED = "[REDACTED]"

# Config keys whose values are secrets, whatever they hold: a whole name part
# (``api_key``, ``auth_token``, ``X-Api-Key``), so ``max_tokens`` is not one.
_SECRET_KEY = re.compile(
    r"(?:^|[_\-.])(?:api[_\-]?key|secret|token|password|passwd|credentials?|authorization"
    r"|auth|cookie|dsn|private[_\-]?key)(?:$|[_\-.])",
    re.IGNORECASE,
)

# Secrets recognisable in free text: provider keys, bearer tokens, ``key=value`` pairs.
_SECRET_TEXT = re.compile(
    r"""
    \b(?:sk|pk|rk)-[A-Za-z0-9_\-]{16,}           # OpenAI / Anthropic style keys (sk-ant-...)
    | \bAKIA[0-9A-Z]{16}\b                        # AWS access key ids
    | \b(?:ghp|gho|ghu|ghs|github_pat)_[A-Za-z0-9_]{20,}   # GitHub tokens
    | \bxox[abprs]-[A-Za-z0-9\-]{10,}             # Slack tokens
    | \bAIza[0-9A-Za-z_\-]{35}                    # Google API keys
    | \beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}   # JWTs
    | (?i:\bbearer\s+)[A-Za-z0-9._~+/\-]{8,}=*    # Authorization: Bearer ...
    | (?i:\b(?:api[_-]?key|secret|token|password|passwd)\b["']?\s*[:=]\s*["']?)[^\s"',;]{4,}
    """,
    re.VERBOSE,
)


# A literal that each form above contains (the named forms in any case): text holding
# none of them holds no secret and skips the expression, which is slow on long text.
_KEY_MARKERS = ("sk-", "pk-", "rk-", "AKIA", "ghp_", "gho_", "ghu_", "ghs_", "github_pat_")
_KEY_MARKERS += ("xox", "AIza", "eyJ")
_NAME_MARKERS = ("bearer", "api", "secret", "token", "passw")


def _may_hold_secret(text: str) -> bool:
    # Plain loops: half the time of any() over a generator, on every logged message.
    for marker in _KEY_MARKERS:
        if marker in text:
            return True
    lowered = text.lower()
    for marker in _NAME_MARKERS:  # noqa: SIM110 - any() over a generator is the slow form
        if marker in lowered:
            return True
    return False


def redact_text(text: str) -> str:
    """``text`` with recognisable secrets replaced by ``[REDACTED]``."""
    if not _may_hold_secret(text):
        return text
    return _SECRET_TEXT.sub(REDACTED, text)


@functools.lru_cache(maxsize=4096)  # config keys are few and repeat every turn
def _is_secret_key(key: str) -> bool:
    return _SECRET_KEY.search(key) is not None


# Config values repeat every turn: short ones are redacted once and remembered.
_CACHED_VALUE_CHARS = 512


@functools.lru_cache(maxsize=4096)
def _redact_config_text(text: str) -> str:
    return redact_text(text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        if len(value) <= _CACHED_VALUE_CHARS:
            return _redact_config_text(value)
        return redact_text(value)
    if isinstance(value, Mapping):
        return redact_mapping(value)
    if isinstance(value, list | tuple):
        return [_redact_value(item) for item in value]
    return value


_PLAIN = (int, float, bool, type(None))  # values that hold no secret, kept as they are


def redact_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``values`` with secret-named keys' values and secrets in strings
    redacted, nested mappings and lists included."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if _is_secret_key(key if isinstance(key, str) else str(key)):
            out[key] = REDACTED
        elif type(value) in _PLAIN:
            out[key] = value
        else:
            out[key] = _redact_value(value)
    return out
