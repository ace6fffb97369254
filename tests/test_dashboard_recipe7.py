"""Recipe 7's WebSocketAnalyticsExporter on the websockets library: JSON lists of
``event.model_dump()``, an optional token, and a client that stops reading is closed."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from dashboard_kit import until
from victor.dashboard import WebSocketAnalyticsExporter
from victor.protocols import AnalyticsEvent


def _events(n: int, size: int = 10) -> list[AnalyticsEvent]:
    return [
        AnalyticsEvent(type="chat_complete", session_id=f"s{i}", data={"pad": "x" * size})
        for i in range(n)
    ]


async def _clients(exporter: WebSocketAnalyticsExporter, n: int) -> None:
    await until(lambda: len(exporter.clients) >= n)


async def test_batches_arrive_as_json_lists_of_model_dump():
    exporter = WebSocketAnalyticsExporter(port=0)
    await exporter.start()
    try:
        async with websockets.connect(f"ws://localhost:{exporter.port}") as ws:
            await _clients(exporter, 1)
            events = _events(3)
            result = await exporter.export(events)
            assert result.success and result.exported_count == 3
            received = json.loads(await ws.recv())
            assert received == [e.model_dump(mode="json") for e in events]
    finally:
        await exporter.shutdown()


async def test_with_a_token_a_wrong_or_late_one_closes_with_1008():
    exporter = WebSocketAnalyticsExporter(port=0, token="k", hello_timeout=0.3)
    await exporter.start()
    url = f"ws://localhost:{exporter.port}"
    try:
        async with websockets.connect(url) as ws:
            await ws.send("nope")
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1008
        async with websockets.connect(url) as ws:
            await asyncio.sleep(0.6)
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1008
        async with websockets.connect(url) as ws:
            await ws.send("k")
            await _clients(exporter, 1)
            await exporter.export(_events(1))
            assert len(json.loads(await ws.recv())) == 1
    finally:
        await exporter.shutdown()


def test_beyond_loopback_a_token_is_required():
    with pytest.raises(ValueError, match="give it a token"):
        WebSocketAnalyticsExporter(host="0.0.0.0")
    WebSocketAnalyticsExporter(host="0.0.0.0", token="k")


async def test_a_client_that_stops_reading_is_closed_and_the_others_keep_up():
    exporter = WebSocketAnalyticsExporter(port=0, max_buffer=256 * 1024)
    await exporter.start()
    url = f"ws://localhost:{exporter.port}"
    try:
        async with (
            websockets.connect(url, max_size=None) as reader,
            websockets.connect(url, max_size=None, max_queue=1) as stuck,
        ):
            await _clients(exporter, 2)
            stuck.transport.pause_reading()  # stops reading from the socket entirely
            got = 0

            async def read() -> None:
                nonlocal got
                while got < 200:
                    got += len(json.loads(await reader.recv()))

            task = asyncio.create_task(read())
            for _ in range(200):
                await exporter.export(_events(1, size=50_000))
                await asyncio.sleep(0)
            async with asyncio.timeout(10):
                await task
            assert got == 200 and len(exporter.clients) == 1
    finally:
        await exporter.shutdown()
