"""The token estimate used wherever a provider has not reported a count.

A provider's ``usage.input_tokens`` for the last call is the truth, and the context
coordinator prefers it. Before the first call of a session, for the messages added since,
for test providers and for budgets, Victor estimates instead:

- text: about four characters a token (``(len + 3) // 4``), the usual figure for English
  and code with the GPT and Claude tokenizers;
- each message: 4 tokens of framing (role, separators);
- each tool call: its name, its arguments *as the JSON the model wrote* (characters over
  four, like text), plus 4 tokens of framing.

It errs on the high side for English and on the low side for dense non-Latin text; the
compaction threshold (0.8 of the window by default) leaves room for that.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from victor.protocols.messages import Message, ToolCall

__all__ = [
    "MESSAGE_OVERHEAD_TOKENS",
    "TOOL_CALL_OVERHEAD_TOKENS",
    "estimate_message_tokens",
    "estimate_tokens",
    "estimate_tool_call_tokens",
]

MESSAGE_OVERHEAD_TOKENS = 4
TOOL_CALL_OVERHEAD_TOKENS = 4


def estimate_tokens(text: str) -> int:
    """About four characters a token."""
    return (len(text) + 3) // 4


def _argument_chars(call: ToolCall) -> int:
    if call.raw_arguments is not None:
        return len(call.raw_arguments)
    if not call.arguments:
        return 2  # "{}"
    try:
        return len(orjson.dumps(call.arguments, default=str))
    except (TypeError, orjson.JSONEncodeError):  # not JSON-able: its text is close enough
        return len(str(call.arguments))


def estimate_tool_call_tokens(call: ToolCall) -> int:
    """A tool call's name and arguments, counted by their size, not their number of keys."""
    return estimate_tokens(call.name) + (_argument_chars(call) + 3) // 4 + TOOL_CALL_OVERHEAD_TOKENS


def estimate_message_tokens(messages: Sequence[Message]) -> int:
    """Tokens of a conversation, by the rules above. Linear in its size: it runs every
    turn, on the messages added since the last count only."""
    chars = 0
    extra = 0
    for m in messages:
        chars += len(m.content)
        if m.tool_calls:
            for call in m.tool_calls:
                extra += estimate_tool_call_tokens(call)
    return (chars + 3) // 4 + MESSAGE_OVERHEAD_TOKENS * len(messages) + extra
