"""Recipe 3: database analytics -- every chat turn's events exported to PostgreSQL.

Runs offline against a local PostgreSQL (a scripted model stands in for a real one):

    pip install 'victor-orchestrator[postgres]'
    export VICTOR_PG_DSN=postgresql://postgres@127.0.0.1:5432/test
    python examples/recipe_3_postgres_export.py

The exporter creates (and migrates) the schema ``victor_recipe_3`` (or the one named by
``VICTOR_PG_SCHEMA``) and its table; events are batched in the background, so a slow or
unreachable database never slows a chat turn: undelivered events wait in a local outbox
file and are sent when the database is back, even by the next process.
``victor analytics --db "$VICTOR_PG_DSN?schema=victor_recipe_3"`` prints the same summary
from the command line (with ``&schema=`` when the DSN already has a query string, such as
``?sslmode=require``; :func:`with_params` does it right).
"""

from __future__ import annotations

import asyncio
import os
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from victor.agent.coordinators.analytics_coordinator import AnalyticsCoordinator
from victor.agent.orchestrator import AgentOrchestrator
from victor.analytics import AnalyticsReader, PostgreSQLAnalyticsExporter
from victor.config.settings import Settings
from victor.providers import ScriptedProvider
from victor.tools import tool

DSN = os.environ.get("VICTOR_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
SCHEMA = os.environ.get("VICTOR_PG_SCHEMA", "victor_recipe_3")
TABLE = "victor_analytics_events"


def with_params(dsn: str, **params: str) -> str:
    """The DSN with query parameters set, keeping any it has (``?sslmode=require``)."""
    parts = urlsplit(dsn)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(params)
    return urlunsplit(parts._replace(query=urlencode(query)))


@tool
def get_weather(city: str) -> str:
    """Today's weather in a city."""
    return f"Sunny and 21 C in {city}"


async def main() -> None:
    exporter = PostgreSQLAnalyticsExporter(DSN, schema=SCHEMA, table=TABLE)
    analytics = AnalyticsCoordinator(exporters=[exporter], batch_size=200, flush_interval=0.5)
    provider = ScriptedProvider(
        [
            {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
            "It is sunny and 21 C in Paris.",
            "Hello! How can I help?",
        ],
        cycle=True,
    )
    orchestrator = AgentOrchestrator(
        settings=Settings(),
        provider=provider,
        model="claude-sonnet-4-5",
        tools=[get_weather],
        _analytics_coordinator=analytics,
    )
    # Session ids of the form "tenant:session" carry the tenant into every event.
    for tenant in ("acme", "globex"):
        for n in range(3):
            session = f"{tenant}:session-{n}"
            weather = await orchestrator.chat("What's the weather in Paris?", session_id=session)
            hello = await orchestrator.chat("Hello!", session_id=session)
            print(f"{session}: {weather.content!r} / {hello.content!r} (cost {weather.cost})")
    await orchestrator.aclose()  # flushes the analytics queue into PostgreSQL

    async with AnalyticsReader.from_url(with_params(DSN, schema=SCHEMA, table=TABLE)) as reader:
        print(f"\n{'tenant':10} {'turns':>6} {'calls':>6} {'tokens':>8} {'cost USD':>10}")
        for row in await reader.summary(since="1h", by="tenant"):
            cost = "-" if row.cost_usd is None else f"{row.cost_usd:.6f}"  # None: unpriced
            print(
                f"{row.label:10} {row.turns:6d} {row.requests:6d} {row.total_tokens:8d} {cost:>10}"
            )
        tools = await reader.summary(since="1h", by="tool")
        for row in tools:
            if row.key[0] and row.latency_p95_ms is not None:
                print(f"tool {row.label}: {row.tool_calls} calls, p95 {row.latency_p95_ms:.2f} ms")
    print(f"\nexporter stats: {analytics.stats.exporters}")


if __name__ == "__main__":
    asyncio.run(main())
