"""Fan-out across processes through Redis Pub/Sub, and what happens when Redis goes away:
the pages keep their own process's events and say that Redis is unreachable."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import websockets

from conftest import REQUIRE_SERVICES
from dashboard_kit import ARTIFACTS, hello, live_stack, require_chromium

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "redis-token"


class ThrowawayRedis:
    """A redis-server of the test's own, on a free port, without persistence."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if REQUIRE_SERVICES:
                pytest.fail("redis-server is not installed")
            pytest.skip("redis-server is not installed")
        self.binary = binary
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""],
            stdout=subprocess.DEVNULL,
        )
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.1).close()
                return
            except OSError:
                import time

                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def throwaway_redis():
    server = ThrowawayRedis()
    server.start()
    yield server
    server.stop()


async def _next(ws, kind: str, within: float = 10.0) -> dict:
    async with asyncio.timeout(within):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == kind:
                return message


PUBLISHER = """
import asyncio, sys
from victor.dashboard.bus import RedisBus
from victor.dashboard.hub import Hub

async def main():
    bus = RedisBus(Hub(), sys.argv[1])
    await bus.start()
    assert bus.up, "not subscribed"
    await bus.publish([{"id": "from-another-process", "type": "chat_complete", "ts": 1,
                        "session": "other:1", "data": {"latency_ms": 12.0}}])
    await bus.aclose()

asyncio.run(main())
"""


async def test_events_of_another_process_reach_the_page_and_redis_going_away_degrades(
    tmp_path, throwaway_redis
):
    async with (
        live_stack(tmp_path, token=TOKEN, redis_url=throwaway_redis.url) as stack,
        websockets.connect(stack.ws_url) as ws,
    ):
        await ws.send(hello(TOKEN))
        status = await _next(ws, "status")
        assert status["fanout"] == "redis"
        await _next(ws, "snapshot")

        # Another process publishes: its event reaches this process's page.
        done = await asyncio.create_subprocess_exec(
            sys.executable, "-c", PUBLISHER, throwaway_redis.url,
            env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        assert await done.wait() == 0
        batch = await _next(ws, "batch")
        assert batch["events"][0]["id"] == "from-another-process"

        # This process's chats go through Redis and come back.
        await stack.chats(1, prefix="via-redis")
        batch = await _next(ws, "batch")
        assert any("via-redis" in (e["session"] or "") for e in batch["events"])

        # Redis goes away: the page is told, and still gets this process's events.
        throwaway_redis.stop()
        status = await _next(ws, "status")
        assert status["fanout"] == "redis-down"
        await stack.chats(2, prefix="local")
        seen = set()
        async with asyncio.timeout(10):
            while not any("local" in s for s in seen):
                seen |= {e["session"] or "" for e in (await _next(ws, "batch"))["events"]}

        # Redis is back: the bus subscribes again and says so.
        throwaway_redis.start()
        status = await _next(ws, "status", within=15)
        assert status["fanout"] == "redis"
        await stack.chats(1, prefix="back")
        batch = await _next(ws, "batch")
        assert any("back" in (e["session"] or "") for e in batch["events"])


async def test_the_page_says_when_redis_is_unreachable(tmp_path, throwaway_redis):
    from playwright.async_api import async_playwright

    chromium = require_chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    async with (
        live_stack(tmp_path, token=TOKEN, redis_url=throwaway_redis.url) as stack,
        async_playwright() as pw,
    ):
        await stack.chats(10)
        browser = await pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport={"width": 1440, "height": 900})
            await page.goto(f"{stack.server.url}#token={TOKEN}")
            await page.wait_for_selector("#fanout[data-state=redis]")
            assert await page.locator("#fanout").inner_text() == "Redis fan-out"
            throwaway_redis.stop()
            await page.wait_for_selector("#fanout[data-state=redis-down]", timeout=10_000)
            text = await page.locator("#fanout").inner_text()
            assert text == "Redis unreachable: in-process only"
            await page.screenshot(path=str(ARTIFACTS / "dashboard-redis-down.png"))
        finally:
            await browser.close()
