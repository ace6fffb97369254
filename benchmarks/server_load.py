"""Load on ``victor serve``: concurrent sessions over loopback, a simulated model.

Starts one (or two, sharing PostgreSQL and Redis) ``victor serve`` processes whose model
is a ``SimulatedProvider`` with a fixed latency (200 ms, no spread, no tool calls), makes
an API key, and runs ``--sessions`` concurrent sessions, each its own keep-alive
connection, each doing ``--turns`` OpenAI-style chat completions (``user`` = the session)
with an exponential think time of mean ``--think`` seconds between turns. With two
processes a session's turns alternate between them (its history and its key's limits
live in PostgreSQL and Redis).

Reported: throughput (answered turns a second over the run), the latency each turn adds
over the model's own 200 ms (client-measured, p50/p95/p99), errors, and memory per idle
session (the servers' resident memory after the run minus before it, per session).

The client is in this process, on uvloop, with a minimal HTTP/1.1 client (a few
microseconds a request, so that the client's own cost is not what is measured); it
shares the machine's cores with the servers.

    python benchmarks/server_load.py [--sessions 1000] [--turns 5] [--think 2.0]
        [--processes 1|2] [--store sqlite|memory|postgres] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POSTGRES = os.environ.get("VICTOR_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("VICTOR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Connection:
    """One keep-alive HTTP/1.1 connection: POST JSON, read a Content-Length answer."""

    def __init__(self, port: int, key: str) -> None:
        self.port = port
        self.key = key
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """Like any HTTP client, once more on a new connection when a kept-alive one
        was closed by the server while idle (uvicorn closes them after 5 s)."""
        reused = self.writer is not None
        try:
            return await self._post(path, body)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            if not reused or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                raise
            self.writer = None
            return await self._post(path, body)

    async def _post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {self.key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        headers = await self.reader.readuntil(b"\r\n\r\n")
        status = int(headers[9:12])
        length = 0
        for line in headers.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


async def session(
    index: int, ports: list[int], key: str, turns: int, think: float, start_in: float, out: dict
) -> None:
    rng = random.Random(index)
    await asyncio.sleep(start_in)
    connections = [Connection(port, key) for port in ports]
    try:
        for turn in range(turns):
            body = json.dumps(
                {
                    "model": "simulated-model",
                    "user": f"load-{index}",
                    "messages": [{"role": "user", "content": f"Question {turn} of {index}?"}],
                }
            ).encode()
            connection = connections[turn % len(connections)]
            started = time.perf_counter()
            try:
                status, answer = await connection.post("/v1/chat/completions", body)
            except (OSError, asyncio.IncompleteReadError) as exc:
                out["errors"].append(f"connection: {exc}")
                connection.writer = None
                continue
            elapsed = time.perf_counter() - started
            if status == 200:
                out["latencies"].append(elapsed)
            else:
                out["errors"].append(f"{status}: {answer[:200]!r}")
            if think > 0 and turn < turns - 1:
                await asyncio.sleep(rng.expovariate(1 / think))
    finally:
        for connection in connections:
            await connection.close()


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def drive(ports: list[int], key: str, args: argparse.Namespace) -> dict:
    out: dict = {"latencies": [], "errors": []}
    started = time.perf_counter()
    await asyncio.gather(
        *(
            session(i, ports, key, args.turns, args.think, args.ramp * i / args.sessions, out)
            for i in range(args.sessions)
        )
    )
    out["wall_s"] = time.perf_counter() - started
    return out


def write_config(work: Path, args: argparse.Namespace) -> Path:
    store = {"sqlite": "sqlite", "memory": "memory", "postgres": POSTGRES}[args.store]
    keys = POSTGRES if args.store == "postgres" or args.processes > 1 else str(work / "keys.db")
    lines = [
        "server:",
        f"  keys: {keys}",
        *([f"  redis: {REDIS}"] if args.processes > 1 else []),
        "orchestrator:",
        "  provider: simulated",
        "  model: simulated-model",
        f"  session_store: {store}",
        f"  simulated: {{latency_ms: {args.latency_ms}, latency_sigma: 0, tool_call_rate: 0,"
        " output_tokens: 20}",
    ]
    path = work / "victor.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


async def make_key(config: Path) -> str:
    from victor.server.factory import key_store_for
    from victor.server.settings import load_serve_config

    store = key_store_for(load_serve_config(config))
    try:
        key, _ = await store.create(f"load{uuid.uuid4().hex[:6]}", rpm=10_000_000)
        return key
    finally:
        await store.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--think", type=float, default=2.0, help="mean seconds between turns")
    parser.add_argument("--ramp", type=float, default=1.0, help="seconds to start all sessions")
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--processes", type=int, choices=(1, 2), default=1)
    parser.add_argument("--store", choices=("sqlite", "memory", "postgres"), default="sqlite")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.processes > 1 and args.store != "postgres":
        parser.error("two processes share their sessions in PostgreSQL: --store postgres")

    sys.path.insert(0, str(ROOT / "src"))
    work = Path(tempfile.mkdtemp(prefix="victor-load-"))
    config = write_config(work, args)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "VICTOR_DATA_DIR": str(work / "data")}
    key = asyncio.run(make_key(config))
    ports = [free_port() for _ in range(args.processes)]
    servers = []
    for i, port in enumerate(ports):
        servers.append(
            subprocess.Popen(
                [sys.executable, "-m", "victor.cli.main", "serve", "--config", str(config),
                 "--port", str(port)],
                env={**env, "VICTOR_DATA_DIR": str(work / f"data{i}")},
                stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
    try:
        import httpx
        import uvloop

        for port in ports:
            for _ in range(300):
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        # Warm up (imports, connections, the provider's first call), then measure.
        warm = argparse.Namespace(**{**vars(args), "sessions": 20, "turns": 2, "think": 0})
        uvloop.run(drive(ports, key, warm))
        before = sum(rss_kib(s.pid) for s in servers)
        result = uvloop.run(drive(ports, key, args))
        time.sleep(1.0)
        after = sum(rss_kib(s.pid) for s in servers)
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=60)

    latencies = sorted(result["latencies"])
    added = [(x * 1000 - args.latency_ms) for x in latencies]
    summary = {
        "sessions": args.sessions,
        "turns": args.turns,
        "think_s": args.think,
        "processes": args.processes,
        "store": args.store,
        "answered": len(latencies),
        "errors": len(result["errors"]),
        "throughput_rps": len(latencies) / result["wall_s"],
        "added_ms": {
            "p50": percentile(added, 0.50),
            "p95": percentile(added, 0.95),
            "p99": percentile(added, 0.99),
            "mean": statistics.fmean(added),
        },
        "memory_per_idle_session_kib": (after - before) / args.sessions,
        "rss_mib_after": after / 1024,
        "load_average": os.getloadavg(),
    }
    if result["errors"]:
        summary["first_errors"] = result["errors"][:5]
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
