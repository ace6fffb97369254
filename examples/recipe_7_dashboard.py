# Recipe 7: a real-time dashboard over a WebSocket. The exporter broadcasts each batch of
# analytics events as a JSON list of event.model_dump(); a page (here, a plain client)
# reads them live. For the full dashboard page: `victor dashboard` or `victor demo --dashboard`.
import asyncio
import json

import websockets

from victor import AgentOrchestrator, Settings
from victor.agent.coordinators import AnalyticsCoordinator
from victor.dashboard import WebSocketAnalyticsExporter
from victor.providers import ScriptedProvider


async def main() -> None:
    exporter = WebSocketAnalyticsExporter(host="localhost", port=0)  # 0: any free port
    await exporter.start()  # (the default port is 8765)
    analytics = AnalyticsCoordinator(exporters=[exporter], flush_interval=0.1)
    async with (
        websockets.connect(f"ws://localhost:{exporter.port}") as dashboard,
        AgentOrchestrator(
            settings=Settings(),
            provider=ScriptedProvider(["Hello!"], cycle=True),
            model="gpt-4o-mini",
            _analytics_coordinator=analytics,
        ) as orchestrator,
    ):
        await asyncio.sleep(0.1)  # the exporter has seen the client connect
        await orchestrator.chat("Hi", session_id="acme:user-1")
        events = json.loads(await dashboard.recv())
        for event in events:
            if event["type"] == "token_usage":
                data = event["data"]
                print(f"{event['tenant_id']}: {data['total_tokens']} tokens, ${data['cost_usd']}")
        print(sorted({event["type"] for event in events}))


asyncio.run(main())
