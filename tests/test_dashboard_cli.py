"""``victor dashboard`` and ``victor demo --dashboard`` as a user runs them: a process
that serves the page over a store, a refusal to listen beyond loopback without a token,
and the demo's traffic reaching a connected page."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import websockets

from dashboard_kit import hello, live_stack

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _victor(*args: str, tmp_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "victor.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "VICTOR_DATA_DIR": str(tmp_path)},
    )


def test_beyond_loopback_without_a_token_is_one_line_and_exit_2(tmp_path):
    done = _victor("dashboard", "--host", "0.0.0.0", "--port", "0", tmp_path=tmp_path)
    _, err = done.communicate(timeout=60)
    assert done.returncode == 2
    assert err.strip().splitlines() == [
        "victor: the dashboard listens on 0.0.0.0, beyond this machine: give it a token (--token)"
    ]


async def _first_line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    return await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 60)


async def test_victor_dashboard_serves_a_store_and_follows_it(tmp_path):
    async with live_stack(tmp_path) as stack:  # a process that chats into analytics.db
        await stack.chats(3, prefix="earlier")
        port = _free_port()
        process = _victor(
            "dashboard", "--db", str(stack.store), "--port", str(port), "--token", "T",
            tmp_path=tmp_path,
        )  # fmt: skip
        try:
            line = await _first_line(process)
            assert f"http://127.0.0.1:{port}/dashboard#token=T" in line
            async with httpx.AsyncClient() as client:
                page = await client.get(f"http://127.0.0.1:{port}/dashboard")
                licence = await client.get(
                    f"http://127.0.0.1:{port}/dashboard/static/vendor/uPlot.LICENSE"
                )
            assert page.status_code == 200 and "uPlot" in page.text
            assert licence.status_code == 200 and "MIT License" in licence.text
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws/analytics") as ws:
                await ws.send(hello("T"))
                kinds: dict[str, dict] = {}
                while "snapshot" not in kinds:
                    message = json.loads(await ws.recv())
                    kinds[message["type"]] = message
                assert kinds["snapshot"]["events"]
                await stack.chats(2, prefix="later")  # the other process's new events
                async with asyncio.timeout(15):
                    while True:
                        message = json.loads(await ws.recv())
                        if message["type"] == "batch" and any(
                            "later" in (e["session"] or "") for e in message["events"]
                        ):
                            break
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)
        assert process.returncode == 0


async def test_victor_demo_dashboard_feeds_a_connected_page(tmp_path):
    port = _free_port()
    process = _victor(
        "demo", "--sessions", "30", "--dashboard", "--port", str(port), "--token", "T",
        tmp_path=tmp_path,
    )  # fmt: skip
    try:
        line = await _first_line(process)
        while "/dashboard#token=T" not in line:
            line = await _first_line(process)
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws/analytics") as ws:
            await ws.send(hello("T"))
            seen: set[str] = set()
            experiments = None
            async with asyncio.timeout(60):
                while experiments is None or "chat_complete" not in seen:
                    message = json.loads(await ws.recv())
                    for event in message.get("events", []):
                        seen.add(event["type"])
                    if message["type"] == "experiments" and message["experiments"]:
                        experiments = message["experiments"][0]
            assert experiments["experiment"] == "demo-model"
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
