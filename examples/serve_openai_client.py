# The HTTP API in a program: an orchestrator served by uvicorn on a free local port, and
# the official OpenAI SDK talking to it. Offline: a scripted model that calls a tool.
import asyncio
import socket

import openai
import uvicorn

from victor import AgentOrchestrator, Settings, tool
from victor.providers import ScriptedProvider
from victor.server import create_app


@tool
async def get_weather(city: str) -> str:
    """Current weather in a city.

    Args:
        city: The city name, e.g. "Paris".
    """
    return f"18 C and sunny in {city}"


async def main() -> None:
    model = ScriptedProvider(
        [
            {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
            "It is 18 C in Paris.",
            "You asked about the weather in Paris.",
        ]
    )
    orchestrator = AgentOrchestrator(
        settings=Settings(session_store="memory"),
        provider=model,
        model="gpt-4o-mini",
        tools=[get_weather],
    )
    # No key store: no authentication, so listen on loopback only.
    app = create_app(orchestrator)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 - uvicorn sets a flag, no event
        await asyncio.sleep(0.01)

    port = sock.getsockname()[1]
    client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none")
    answer = await client.chat.completions.create(
        model="gpt-4o-mini",
        user="paris-trip",  # the session: the server keeps its history
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    )
    print(answer.choices[0].message.content, answer.usage.total_tokens > 0)
    print("tools run:", [t["name"] for t in answer.model_extra["victor"]["tools_run"]])

    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        user="paris-trip",
        messages=[{"role": "user", "content": "What did I ask?"}],
        stream=True,
    )
    async for chunk in stream:
        if chunk.choices:
            print(chunk.choices[0].delta.content or "", end="")
    print()
    print("history sent to the model:", len(model.calls[-1]["messages"]), "messages")

    server.should_exit = True
    await serving


asyncio.run(main())
