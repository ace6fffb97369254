# An agent with one tool, on OpenAI (OPENAI_API_KEY), or on any OpenAI-compatible server
# named by OPENAI_BASE_URL (for example http://localhost:11434/v1 for Ollama).
import asyncio

from victor import AgentOrchestrator, Settings, tool
from victor.providers import OpenAIProvider


@tool
async def get_weather(city: str) -> str:
    """Current weather in a city.

    Args:
        city: The city name, e.g. "Paris".
    """
    return f"18 C and sunny in {city}"


async def main() -> None:
    async with AgentOrchestrator(
        settings=Settings(),
        provider=OpenAIProvider(),  # reads OPENAI_API_KEY (and OPENAI_BASE_URL)
        model="gpt-4o-mini",
        tools=[get_weather],
    ) as orchestrator:
        response = await orchestrator.chat("Weather in Paris?", session_id="acme:user-1")
        print(response.content, response.usage.total_tokens, response.cost)

        async for chunk in orchestrator.stream("And in Oslo?", session_id="acme:user-1"):
            if chunk.type == "text":
                print(chunk.text, end="")
        print()


asyncio.run(main())
