# With more tools than max_tools, each turn offers the best ones for the query; a stand-in
# model answers with the names of the tools it was offered.
import asyncio

from victor import AgentOrchestrator, Settings, tool
from victor.protocols import Tool
from victor.providers import FunctionProvider

CATALOGUE = {
    "get_weather_forecast": "Weather forecast (temperature, rain, wind) for a city.",
    "convert_currency": "Convert an amount of money from one currency to another.",
    "send_email": "Send an email message to a recipient.",
    "search_flights": "Find flights between two airports on a date.",
    "book_hotel": "Book a hotel room in a city for given dates.",
    "run_sql_query": "Run a read-only SQL query on the analytics database.",
    "set_reminder": "Remind the user of something at a given time.",
    "find_restaurants": "Restaurants near a place, by cuisine.",
    "get_air_quality": "Air quality index and pollutants for a city.",
    "create_invoice": "Create an invoice for a customer.",
    "open_support_ticket": "Open a support ticket with a description of the problem.",
    "get_sunrise_sunset": "Sunrise and sunset times for a city and date.",
}


@tool
async def search_docs(query: str) -> str:
    """Search the product documentation."""
    return f"No page matches {query!r}."


async def main() -> None:
    tools = [Tool(name=name, description=text) for name, text in CATALOGUE.items()]
    config = {
        "tool_selection": {
            "strategy": "hybrid",
            "max_tools": 8,
            "hybrid_alpha": 0.8,
            "pinned": ["search_docs"],
        }
    }
    async with AgentOrchestrator(
        settings=Settings(),
        provider=FunctionProvider(lambda messages, tools: ", ".join(t.name for t in tools)),
        model="gpt-4o-mini",
        tools=[*tools, search_docs],
    ) as orchestrator:
        response = await orchestrator.chat("Will it rain in Oslo tomorrow?", config=config)
        print(f"{len(tools) + 1} tools; offered: {response.content}")


asyncio.run(main())
