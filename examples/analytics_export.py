# Every turn's events, exported in the background; here to a JSONL file in the data dir.
import asyncio
import json
from collections import Counter

from victor import AgentOrchestrator, Settings
from victor.agent.coordinators import AnalyticsCoordinator
from victor.analytics import JSONLAnalyticsExporter
from victor.providers import ScriptedProvider


async def main() -> None:
    settings = Settings()
    path = settings.data_dir / "events.jsonl"
    analytics = AnalyticsCoordinator(exporters=[JSONLAnalyticsExporter(path)])
    async with AgentOrchestrator(
        settings=settings,
        provider=ScriptedProvider(["Hello!"], cycle=True),
        model="gpt-4o-mini",
        _analytics_coordinator=analytics,
    ) as orchestrator:
        for tenant in ("acme", "globex"):
            await orchestrator.chat("Hi", session_id=f"{tenant}:s1")
    # Closing the orchestrator flushed the queue.
    events = [json.loads(line) for line in path.read_text().splitlines()]
    print(Counter(event["type"] for event in events))
    print(Counter(event["tenant_id"] for event in events))


asyncio.run(main())
