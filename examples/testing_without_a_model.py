# The same agent, offline: models that are scripts, functions or seeded simulations.
import asyncio

from victor import AgentOrchestrator, Settings, tool
from victor.providers import FunctionProvider, ScriptedProvider, SimulatedProvider


@tool
async def get_weather(city: str) -> str:
    """Current weather in a city.

    Args:
        city: The city name, e.g. "Paris".
    """
    return f"18 C and sunny in {city}"


async def main() -> None:
    scripted = ScriptedProvider(  # its answers, in order
        [
            {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
            "It is 18 C in Paris.",
        ]
    )
    providers = {
        "scripted": scripted,
        "function": FunctionProvider(lambda messages, tools: f"echo: {messages[-1].content}"),
        "simulated": SimulatedProvider(seed=1, latency_ms=30, error_rate=0.0, tool_call_rate=0.5),
    }
    for name, provider in providers.items():
        async with AgentOrchestrator(
            settings=Settings(session_store="memory"),
            provider=provider,
            model="test-model",
            tools=[get_weather],
        ) as orchestrator:
            response = await orchestrator.chat("Weather in Paris?", session_id=f"test:{name}")
            print(f"{name}: {response.content}")
    # What the model was sent on its second call: the tool's result.
    print("tool result seen:", scripted.calls[1]["messages"][-1].content)


asyncio.run(main())
