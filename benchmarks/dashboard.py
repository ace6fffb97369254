"""The live dashboard's speed: event-to-browser latency, fan-out to 1,000 WebSocket clients
(against the ``websockets`` library's own ``broadcast``), memory per idle client, and what
an open dashboard costs a chat turn.

    python benchmarks/dashboard.py latency [--seconds 20]    # needs /usr/bin/chromium
    python benchmarks/dashboard.py fanout [--clients 1000] [--seconds 10]
    python benchmarks/dashboard.py turn [--turns 3000] [--rounds 3]

*latency*: an orchestrator on the simulated model (50 ms a call, 4 conversations at a
time) exports to SQLite and to the dashboard; headless Chromium shows the page, which
records, for each event of each live batch, its arrival time minus the event's timestamp
(set when the chat loop built it; same machine, same clock). Runs at several
``flush_interval`` of the analytics coordinator: its batching is most of the delay.

*fanout*: the server runs in a process of its own (uvicorn + Starlette + the hub, or a
``websockets`` server calling ``broadcast``); this process holds the clients, minimal
WebSocket readers on raw sockets that count frames (so the clients cost little). The
server publishes 256-byte frames back to back (one per pass of its event loop) for
``--seconds``; delivered frames/s = frames received by all clients / seconds. Memory per
idle client = (server RSS with the clients connected - RSS before) / clients.

*turn*: turns of an instant scripted model through an A/B experiment with SQLite analytics
(``flush_interval`` 0.1 s), with and without the dashboard (its exporter, its server, a
page connected from another process, the A/B panel recomputing); each turn timed with one
pass of the event loop. Back to back (``--gap 0``: the background work competes with the
next turn, the CPU a turn costs) and paced (``--gap 0.001``: 1 ms untimed between turns,
the room a model's network wait gives); rounds alternate, medians reported.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FRAME_BYTES = 256


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# -- latency ---------------------------------------------------------------------------
async def latency(seconds: float, flush_interval: float) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    from victor import AgentOrchestrator, Settings
    from victor.agent.coordinators import AnalyticsCoordinator, ExperimentConfigCoordinator
    from victor.analytics.exporters.sqlite import SQLiteAnalyticsExporter
    from victor.dashboard.app import Dashboard
    from victor.dashboard.serve import DashboardServer
    from victor.errors import ProviderError
    from victor.experiments import Experiment
    from victor.providers import SimulatedProvider

    tmp = Path(tempfile.mkdtemp())
    store = tmp / "analytics.db"
    dashboard = Dashboard(store, token="bench")
    analytics = AnalyticsCoordinator(
        [SQLiteAnalyticsExporter(store), dashboard.exporter()],
        flush_interval=flush_interval,
    )
    experiment = Experiment("bench", {"a": {"model": "gpt-4o-mini"}, "b": {"model": "gpt-4o"}})
    orchestrator = AgentOrchestrator(
        settings=Settings(data_dir=tmp, session_store="memory"),
        provider=SimulatedProvider(seed=1, latency_ms=50, error_rate=0.01),
        _config_coordinator=ExperimentConfigCoordinator(experiment, analytics=analytics),
        _analytics_coordinator=analytics,
    )
    server = DashboardServer(dashboard, "127.0.0.1", 0)
    await server.start()

    async def conversation(worker: int, until: float) -> int:
        turns = 0
        while time.monotonic() < until:
            with contextlib.suppress(ProviderError):  # simulated server errors
                await orchestrator.chat("Hello there", session_id=f"w{worker}-{turns}")
            turns += 1
        return turns

    async with orchestrator, async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox"]
        )
        page = await browser.new_page()
        await page.goto(f"{server.url}#token=bench")
        await page.wait_for_selector("#conn[data-state=live]")
        await conversation(0, time.monotonic() + 1.0)  # warm-up
        await asyncio.sleep(2 * flush_interval + 0.5)
        await page.evaluate("window.victorDashboard.state.lags.length = 0")
        until = time.monotonic() + seconds
        turns = sum(await asyncio.gather(*(conversation(w, until) for w in range(4))))
        await asyncio.sleep(2 * flush_interval + 0.5)
        lags = await page.evaluate("window.victorDashboard.state.lags")
        await browser.close()
    await server.aclose()
    return {
        "flush_interval_s": flush_interval,
        "turns": turns,
        "events": len(lags),
        "p50_ms": pct(lags, 0.50),
        "p95_ms": pct(lags, 0.95),
        "p99_ms": pct(lags, 0.99),
        "max_ms": max(lags),
    }


# -- fan-out: the server side (a subprocess) ---------------------------------------------
async def serve_victor(port_file: Path) -> None:
    import uvicorn

    from victor.dashboard.app import Dashboard, create_dashboard_app

    dashboard = Dashboard(None, queue_size=512)
    hub = dashboard.hub
    config = uvicorn.Config(
        create_dashboard_app(dashboard),
        host="127.0.0.1",
        port=0,
        log_level="error",
        ws_per_message_deflate=False,
        ws=os.environ.get("BENCH_UVICORN_WS", "auto"),  # as DashboardServer runs it
        backlog=4096,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - polling uvicorn's flag
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    padding = "x" * (
        FRAME_BYTES - len(json.dumps({"type": "batch", "seq": 1, "events": [{"i": 1, "p": ""}]}))
    )

    def publish(i: int) -> None:
        hub.publish([{"i": i, "p": padding}])

    await _control(port, port_file, lambda: hub.clients, publish, lambda: hub.dropped)
    server.should_exit = True
    await task


async def serve_websockets(port_file: Path) -> None:
    from websockets.asyncio.server import broadcast, serve

    clients: set[Any] = set()

    async def handler(connection: Any) -> None:
        await connection.recv()  # the hello, as the dashboard's clients send it
        clients.add(connection)
        try:
            await connection.wait_closed()
        finally:
            clients.discard(connection)

    message = "y" * FRAME_BYTES
    async with serve(handler, "127.0.0.1", 0, compression=None, backlog=4096) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        await _control(
            port, port_file, lambda: len(clients), lambda i: broadcast(clients, message), lambda: 0
        )


async def _control(port: int, port_file: Path, clients, publish, dropped) -> None:
    """Tell the benchmark the port, then obey its commands on stdin."""
    gc.collect()
    base = rss_bytes()
    port_file.write_text(str(port))  # noqa: ASYNC240 - a tiny file, once
    loop = asyncio.get_running_loop()
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).split()
        if not line or line[0] == "quit":
            return
        if line[0] == "idle":
            while clients() < int(line[1]):  # noqa: ASYNC110 - polling a plain counter
                await asyncio.sleep(0.05)
            gc.collect()
            await asyncio.sleep(0.5)
            print(
                json.dumps({"rss_base": base, "rss": rss_bytes(), "clients": clients()}), flush=True
            )
        elif line[0] == "publish":
            until = time.monotonic() + float(line[1])
            sent = 0
            while time.monotonic() < until:
                publish(sent)
                sent += 1
                await asyncio.sleep(0)
            print(
                json.dumps({"published": sent, "dropped": dropped(), "clients": clients()}),
                flush=True,
            )


# -- fan-out: the clients (this process) ---------------------------------------------------
class CountingClient(asyncio.Protocol):
    """A WebSocket client that says hello, answers pings, and counts text frames."""

    HELLO = json.dumps({"type": "hello", "token": None}).encode()

    def __init__(self, port: int) -> None:
        self.port = port
        self.buf = bytearray()
        self.open = False
        self.frames = 0
        self.transport: Any = None
        self.ready = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            (
                f"GET /ws/analytics HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + body)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.open:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            del self.buf[: end + 4]
            self.open = True
            self._send(0x1, self.HELLO)
            self.ready.set_result(None)
        buf = self.buf
        while len(buf) >= 2:
            length, header = buf[1] & 0x7F, 2
            if length == 126:
                if len(buf) < 4:
                    return
                length, header = int.from_bytes(buf[2:4], "big"), 4
            elif length == 127:
                if len(buf) < 10:
                    return
                length, header = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < header + length:
                return
            opcode = buf[0] & 0x0F
            if opcode == 0x1:
                self.frames += 1
            elif opcode == 0x9:
                self._send(0xA, bytes(buf[header : header + length]))
            del buf[: header + length]


async def fanout(kind: str, clients: int, seconds: float) -> dict[str, Any]:
    port_file = Path(tempfile.mkdtemp()) / "port"
    server = subprocess.Popen(  # noqa: ASYNC220 - started before the measure
        [sys.executable, __file__, "serve", kind, str(port_file)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert server.stdin and server.stdout
    while not port_file.exists() or not port_file.read_text():  # noqa: ASYNC110 - polling the server's port file
        await asyncio.sleep(0.05)
    port = int(port_file.read_text())
    loop = asyncio.get_running_loop()
    protocols: list[CountingClient] = []
    for start in range(0, clients, 100):
        batch = [CountingClient(port) for _ in range(start, min(clients, start + 100))]
        await asyncio.gather(
            *(loop.create_connection(lambda p=p: p, "127.0.0.1", port) for p in batch)
        )
        await asyncio.gather(*(p.ready for p in batch))
        protocols += batch

    async def ask(command: str) -> dict[str, Any]:
        server.stdin.write(command + "\n")
        server.stdin.flush()
        return json.loads(await loop.run_in_executor(None, server.stdout.readline))

    idle = await ask(f"idle {clients}")
    before = sum(p.frames for p in protocols)
    started = time.monotonic()
    published = await ask(f"publish {seconds}")
    elapsed = time.monotonic() - started
    await asyncio.sleep(0.5)  # frames in flight
    received = sum(p.frames for p in protocols) - before
    per_client = [p.frames for p in protocols]
    server.stdin.write("quit\n")
    server.stdin.flush()
    for p in protocols:
        p.transport.close()
    server.wait(timeout=30)
    return {
        "server": kind,
        "clients": clients,
        "frames_per_s": received / elapsed,
        "published_per_s": published["published"] / elapsed,
        "dropped_clients": published["dropped"],
        "min_frames_per_client": min(per_client),
        "max_frames_per_client": max(per_client),
        "kib_per_idle_client": (idle["rss"] - idle["rss_base"]) / clients / 1024,
    }


# -- turn cost ---------------------------------------------------------------------------
async def turn_cost(turns: int, with_dashboard: bool, gap: float) -> float:
    from victor import AgentOrchestrator, Settings
    from victor.agent.coordinators import AnalyticsCoordinator, ExperimentConfigCoordinator
    from victor.analytics.exporters.sqlite import SQLiteAnalyticsExporter
    from victor.dashboard.app import Dashboard
    from victor.dashboard.serve import DashboardServer
    from victor.experiments import Experiment
    from victor.providers import ScriptedProvider

    tmp = Path(tempfile.mkdtemp())
    store = tmp / "analytics.db"
    exporters: list[Any] = [SQLiteAnalyticsExporter(store)]
    server = page = None
    if with_dashboard:
        dashboard = Dashboard(store, token="bench")
        exporters.append(dashboard.exporter())
        server = DashboardServer(dashboard, "127.0.0.1", 0)
        await server.start()
        # A page that stays connected, in another process (started before the measure).
        page = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "-c", READER, str(server.port)],
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        )
        while dashboard.hub.clients < 1:  # noqa: ASYNC110 - polling a plain counter
            await asyncio.sleep(0.05)
    analytics = AnalyticsCoordinator(exporters, flush_interval=0.1)
    experiment = Experiment("bench", {"a": {"model": "gpt-4o-mini"}, "b": {"model": "gpt-4o"}})
    orchestrator = AgentOrchestrator(
        settings=Settings(data_dir=tmp, session_store="memory"),
        provider=ScriptedProvider(["Hello!"], cycle=True),
        _config_coordinator=ExperimentConfigCoordinator(experiment, analytics=analytics),
        _analytics_coordinator=analytics,
    )
    async with orchestrator:
        for i in range(300):
            await orchestrator.chat("Hi", session_id=f"warm-{i}")
            await asyncio.sleep(0)
        gc.collect()
        elapsed = 0.0
        for i in range(turns):
            started = time.perf_counter()
            await orchestrator.chat("Hi", session_id=f"s-{i}")
            await asyncio.sleep(0)
            elapsed += time.perf_counter() - started
            if gap:
                await asyncio.sleep(gap)  # untimed: a model's network wait
    if server is not None:
        await server.aclose()
    if page is not None:
        page.kill()
        page.wait()
    return elapsed / turns * 1e6


READER = """
import asyncio, json, sys, websockets
async def main():
    url = f"ws://127.0.0.1:{sys.argv[1]}/ws/analytics"
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "hello", "token": "bench"}))
        try:
            async for _ in ws:
                pass
        except websockets.ConnectionClosed:
            pass
asyncio.run(main())
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    lat = sub.add_parser("latency")
    lat.add_argument("--seconds", type=float, default=20.0)
    lat.add_argument("--flush", type=float, nargs="+", default=[0.05, 0.1, 1.0])
    fan = sub.add_parser("fanout")
    fan.add_argument("--clients", type=int, default=1000)
    fan.add_argument("--seconds", type=float, default=10.0)
    fan.add_argument("--runs", type=int, default=3)
    turn = sub.add_parser("turn")
    turn.add_argument("--turns", type=int, default=3000)
    turn.add_argument("--rounds", type=int, default=3)
    turn.add_argument("--gap", type=float, nargs="+", default=[0.0, 0.001])
    srv = sub.add_parser("serve")
    srv.add_argument("kind", choices=["victor", "websockets"])
    srv.add_argument("port_file", type=Path)
    args = parser.parse_args()

    if args.what == "serve":
        run = serve_victor if args.kind == "victor" else serve_websockets
        asyncio.run(run(args.port_file))
    elif args.what == "latency":
        for flush in args.flush:
            print(json.dumps(asyncio.run(latency(args.seconds, flush))), flush=True)
    elif args.what == "fanout":
        for run in range(args.runs):
            for kind in ("victor", "websockets"):
                result = asyncio.run(fanout(kind, args.clients, args.seconds))
                print(json.dumps({"run": run, **result}), flush=True)
    else:
        for gap in args.gap:
            results: dict[str, list[float]] = {"without": [], "with": []}
            for _ in range(args.rounds):
                for label in ("without", "with"):
                    cost = asyncio.run(turn_cost(args.turns, label == "with", gap))
                    results[label].append(cost)
            for label, values in results.items():
                print(json.dumps({"gap_s": gap, "dashboard": label, "us_per_turn": values,
                                  "median_us": statistics.median(values)}), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
