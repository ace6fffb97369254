"""What the provider test modules share: a sample tool, a first message, an instant
``sleep`` that records the back-off it was asked for, and small readers."""

from __future__ import annotations

from collections.abc import AsyncIterator

from victor.protocols.messages import Message, StreamChunk
from victor.protocols.tools import Tool

WEATHER = Tool(
    name="get_weather",
    description="Current weather of a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
HELLO = [Message(role="user", content="Hello!")]


class Sleeps(list[float]):
    """An instant ``sleep`` that remembers the delays it was asked for."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


async def collect(stream: AsyncIterator[StreamChunk]) -> list[StreamChunk]:
    return [chunk async for chunk in stream]


def sent_key(headers: dict[str, str]) -> str:
    """The API key as the SDK sent it: ``x-api-key`` before SDK 2.x, a bearer token now."""
    return headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
