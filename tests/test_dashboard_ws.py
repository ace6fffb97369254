"""The dashboard's WebSocket against a real uvicorn server: the hello and its token, the
snapshot, numbered live batches, resuming after a reconnect, and clients that are slow
or leave mid-batch."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket

import pytest
import websockets

from dashboard_kit import hello, live_stack, until
from victor.dashboard.hub import Hub
from victor.dashboard.protocol import POLICY_VIOLATION

TOKEN = "t0ken"


async def _recv(ws, kind: str, within: float = 10.0) -> dict:
    """The next message of type ``kind`` (skipping the others)."""
    async with asyncio.timeout(within):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == kind:
                return message


async def _closed_with(ws) -> int:
    with pytest.raises(websockets.ConnectionClosed) as closed:
        async with asyncio.timeout(10):
            while True:
                await ws.recv()
    return closed.value.rcvd.code


@pytest.mark.parametrize(
    "first",
    [hello(None), hello("wrong"), hello(TOKEN.upper()), '{"type": "subscribe"}', "not json"],
    ids=["no-token", "wrong-token", "case-differs", "not-a-hello", "not-json"],
)
async def test_a_missing_or_bad_token_closes_with_1008(tmp_path, first):
    async with live_stack(tmp_path, token=TOKEN) as stack:
        async with websockets.connect(stack.ws_url) as ws:
            await ws.send(first)
            assert await _closed_with(ws) == POLICY_VIOLATION
        await until(lambda: stack.dashboard.hub.clients == 0)


async def test_a_token_sent_too_late_closes_with_1008(tmp_path):
    async with (
        live_stack(tmp_path, token=TOKEN, hello_timeout=0.3) as stack,
        websockets.connect(stack.ws_url) as ws,
    ):
        await asyncio.sleep(0.6)
        with pytest.raises(websockets.ConnectionClosed):
            await ws.send(hello(TOKEN))
            await ws.recv()
        assert ws.close_code == POLICY_VIOLATION


async def test_snapshot_then_numbered_live_batches(tmp_path):
    async with live_stack(tmp_path, token=TOKEN) as stack:
        await stack.chats(3, prefix="old")
        async with websockets.connect(stack.ws_url) as ws:
            await ws.send(hello(TOKEN))
            welcome = await _recv(ws, "welcome")
            assert welcome["resumed"] is False
            snapshot = await _recv(ws, "snapshot")
            types = {e["type"] for e in snapshot["events"]}
            assert {"llm_request", "token_usage", "chat_complete"} <= types
            assert all(e["session"].split(":")[1].startswith("old") for e in snapshot["events"])
            start = stack.dashboard.hub.seq
            await stack.chats(2, prefix="new")
            batch = await _recv(ws, "batch")
            while batch["seq"] <= start:  # frames of the recent past come first
                batch = await _recv(ws, "batch")
            seqs = [batch["seq"]]
            while seqs[-1] < stack.dashboard.hub.seq:
                seqs.append((await _recv(ws, "batch"))["seq"])
            assert seqs == list(range(start + 1, stack.dashboard.hub.seq + 1))


async def test_a_reconnecting_client_gets_the_gap(tmp_path):
    async with live_stack(tmp_path, token=TOKEN) as stack:
        async with websockets.connect(stack.ws_url) as ws:
            await ws.send(hello(TOKEN))
            epoch = (await _recv(ws, "welcome"))["epoch"]
            await stack.chats(1, prefix="seen")
            last = (await _recv(ws, "batch"))["seq"]
        await stack.chats(3, prefix="missed")  # while the page is away
        missed = stack.dashboard.hub.seq
        assert missed > last
        async with websockets.connect(stack.ws_url) as ws:
            await ws.send(hello(TOKEN, epoch=epoch, last_seq=last))
            assert (await _recv(ws, "welcome"))["resumed"] is True
            got = []
            while not got or got[-1]["seq"] < missed:
                message = json.loads(await ws.recv())
                assert message["type"] != "snapshot"
                if message["type"] == "batch":
                    got.append(message)
            assert [m["seq"] for m in got] == list(range(last + 1, missed + 1))
            sessions = {e["session"] for m in got for e in m["events"]}
            assert sum(":missed-" in s for s in sessions) == 3
        # Another server's epoch (a restart): a fresh snapshot, not a resume.
        async with websockets.connect(stack.ws_url) as ws:
            await ws.send(hello(TOKEN, epoch="elsewhere", last_seq=last))
            assert (await _recv(ws, "welcome"))["resumed"] is False
            await _recv(ws, "snapshot")


def _never_reading_client(port: int) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            "GET /ws/analytics HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:  # the handshake's answer, then no more reading
        response += sock.recv(1)
    assert response.startswith(b"HTTP/1.1 101")
    payload = hello(TOKEN).encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
    return sock


async def test_a_client_that_never_reads_is_dropped_and_stalls_no_one(tmp_path):
    async with live_stack(tmp_path, token=TOKEN, queue_size=16) as stack:
        hub = stack.dashboard.hub
        stuck = await asyncio.to_thread(_never_reading_client, stack.server.port)
        async with websockets.connect(stack.ws_url, max_size=None) as ws:
            await ws.send(hello(TOKEN))
            await _recv(ws, "snapshot")
            await until(lambda: hub.clients == 2)
            big = {"type": "metric", "ts": 0, "data": {"x": "y" * 20_000}}
            first = hub.seq + 1
            loop = asyncio.get_running_loop()
            worst = 0.0
            received: list[int] = []

            async def read() -> None:
                while len(received) < 400:
                    message = json.loads(await ws.recv())
                    if message["type"] == "batch" and message["seq"] >= first:
                        received.append(message["seq"])

            reader = asyncio.create_task(read())
            for i in range(400):
                started = loop.time()
                hub.publish([{**big, "id": f"e{i}"}])
                worst = max(worst, loop.time() - started)
                await asyncio.sleep(0.001)
            async with asyncio.timeout(20):
                await reader
            assert received == list(range(first, first + 400))  # the reader missed nothing
            assert hub.dropped == 1 and hub.clients == 1  # the stuck one is gone
            assert worst < 0.05  # publishing never waited for the stuck client
        stuck.close()


async def test_a_client_that_leaves_mid_batch_leaves_the_others_whole(tmp_path):
    async with live_stack(tmp_path, token=TOKEN) as stack:
        hub = stack.dashboard.hub
        async with (
            websockets.connect(stack.ws_url, max_size=None) as stays,
            websockets.connect(stack.ws_url, max_size=None) as leaves,
        ):
            for ws in (stays, leaves):
                await ws.send(hello(TOKEN))
                await _recv(ws, "snapshot")
            first = hub.seq + 1
            for i in range(50):
                hub.publish(
                    [{"id": f"m{i}", "type": "metric", "ts": 0, "data": {"x": "z" * 50_000}}]
                )
            await _recv(leaves, "batch")
            leaves.transport.abort()  # gone in the middle of the stream, no close frame
            for i in range(50, 100):
                hub.publish([{"id": f"m{i}", "type": "metric", "ts": 0, "data": {}}])
            seqs = []
            async with asyncio.timeout(10):
                while len(seqs) < 100:
                    message = json.loads(await stays.recv())
                    if message["type"] == "batch" and message["seq"] >= first:
                        seqs.append(message["seq"])
            assert seqs == list(range(first, first + 100))
            await until(lambda: hub.clients == 1)
            await stack.chats(1)  # the chat loop carries on
            assert (await _recv(stays, "batch"))["events"]


def test_the_hub_drops_only_the_subscriber_that_is_full():
    async def run() -> None:
        hub = Hub(queue_size=2, replay=4)
        dropped: list[str] = []
        slow, _ = hub.subscribe(on_drop=lambda: dropped.append("slow"))
        fast, _ = hub.subscribe(on_drop=lambda: dropped.append("fast"))
        for i in range(3):
            hub.publish([{"id": str(i)}])
            await fast.queue.get()
        assert dropped == ["slow"] and slow.dropped and not fast.dropped
        assert hub.clients == 1 and hub.dropped == 1
        # The ring keeps the last 4 frames: seq 1 is gone after 5 publishes; a gap
        # longer than a queue is not resumed either (a snapshot is cheaper).
        hub.publish([{"id": "3"}])
        hub.publish([{"id": "4"}])
        sub, resumed = hub.subscribe(epoch=hub.epoch, last_seq=3)
        assert resumed and [json.loads(sub.queue.get_nowait())["seq"] for _ in range(2)] == [4, 5]
        assert hub.subscribe(epoch=hub.epoch, last_seq=1)[1] is False
        assert hub.subscribe(epoch=hub.epoch, last_seq=0)[1] is False
        assert hub.subscribe(epoch="other", last_seq=4)[1] is False

    asyncio.run(run())
