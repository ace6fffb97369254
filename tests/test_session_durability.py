"""What a chat turn promises about its history: committed when acknowledged, never lost to
a neighbour's bad write or a crash, and in order across processes sharing one store."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid

import pytest

from victor import AgentOrchestrator, Settings
from victor.errors import ConfigError, SessionConflictError
from victor.providers import FunctionProvider, OpenAIProvider
from victor.sessions import SQLiteSessionStore
from wire_server import Raw, Reply, WireServer


def echo(messages, tools):
    return "ok"


async def test_one_bad_message_loses_no_other_session(tmp_path):
    orch = AgentOrchestrator(settings=Settings(), provider=FunctionProvider(echo), model="m")
    texts = [f"message {i}" for i in range(20)]
    texts[7] = "clipboard \ud800 paste"
    await asyncio.gather(*(orch.chat(t, session_id=f"s{i}") for i, t in enumerate(texts)))
    await orch.aclose()

    store = SQLiteSessionStore(Settings().sessions_path)
    for i in range(20):
        history = await store.load(f"s{i}")
        assert [m.role for m in history] == ["user", "assistant"], i
    assert (await store.load("s7"))[0].content == "clipboard \ufffd paste"
    await store.aclose()


async def test_odd_text_from_a_model_does_not_poison_the_session(server: WireServer):
    """The model's answer holds a lone surrogate (JSON ``\\ud800``): the next turns still
    go through the real SDK, which cannot encode such text."""
    body = json.dumps(
        {
            "id": "chatcmpl-odd",
            "object": "chat.completion",
            "created": 0,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "broken \ud800 answer"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        }
    )  # ASCII JSON with a lone surrogate escaped, as a buggy server may send it
    assert "\\ud800" in body
    server.enqueue(Raw(body), Reply(text="fine"), Reply(text="still"))
    provider = OpenAIProvider(api_key="k", base_url=server.openai_base_url, max_retries=0)
    async with AgentOrchestrator(settings=Settings(), provider=provider, model="m") as orch:
        first = await orch.chat("hi", session_id="odd")
        assert first.content == "broken \ufffd answer"
        assert (await orch.chat("again", session_id="odd")).content == "fine"
        assert (await orch.chat("and again", session_id="odd")).content == "still"


_CRASH = """
import asyncio, os, signal
from victor import AgentOrchestrator, Settings
from victor.providers import FunctionProvider

async def main():
    orch = AgentOrchestrator(
        settings=Settings(), provider=FunctionProvider(lambda m, t: "ok"), model="m"
    )
    for i in range(50):
        await orch.chat(f"turn {i}", session_id="crash")
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


@pytest.mark.parametrize("durability", ["sync", "async"])
async def test_an_acknowledged_turn_survives_a_kill(tmp_path, durability):
    env = {**os.environ, "VICTOR_SESSION_DURABILITY": durability}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", _CRASH, env=env)
    assert await asyncio.wait_for(proc.wait(), 120) == -9
    store = SQLiteSessionStore(Settings().sessions_path)
    stored = len(await store.load("crash") or [])
    await store.aclose()
    if durability == "sync":
        assert stored == 100
    else:  # write-behind: the documented risk, a whole number of turns at most lost
        assert stored % 2 == 0 and stored <= 100


_TWO_PROCESSES = """
import asyncio, sys
from victor import AgentOrchestrator, Settings
from victor.errors import SessionConflictError
from victor.providers import FunctionProvider

async def model(messages, tools):
    await asyncio.sleep(0.005)  # long enough for the two processes' turns to overlap
    # What the model saw: every message of the session before this turn's answer.
    return str(len(messages))

async def main():
    name, dsn, schema = (sys.argv[1:] + ["", ""])[:3]
    store = None
    if dsn:
        from victor.sessions import PostgresSessionStore

        store = PostgresSessionStore(dsn, schema=schema)
    orch = AgentOrchestrator(
        settings=Settings(), provider=FunctionProvider(model), model="m", session_store=store
    )
    conflicts = 0
    for i in range(100):
        while True:
            try:
                await orch.chat(f"{name} {i}", session_id="shared")
                break
            except SessionConflictError:
                conflicts += 1
    await orch.aclose()
    print(conflicts)

asyncio.run(main())
"""


def _run_two(*store_args: str) -> list[int]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _TWO_PROCESSES, name, *store_args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    outputs = [p.communicate(timeout=240) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-2000:]
    return [int(out.split()[-1]) for out, _ in outputs]


def _assert_one_conversation(history) -> None:
    assert len(history) == 400
    for position in range(0, 400, 2):
        user, answer = history[position], history[position + 1]
        assert user.role == "user" and answer.role == "assistant"
        # Each model call saw the whole conversation so far, both processes' turns.
        assert answer.content == str(position + 1)
    for name in ("a", "b"):
        mine = [m.content for m in history if m.role == "user" and m.content[0] == name]
        assert mine == [f"{name} {i}" for i in range(100)]


async def test_two_processes_on_one_sqlite_file_keep_one_conversation(tmp_path):
    conflicts = _run_two()  # both start cold, on a new data dir
    store = SQLiteSessionStore(Settings().sessions_path)
    _assert_one_conversation(await store.load("shared"))
    await store.aclose()
    print("conflicts retried:", conflicts)


async def test_two_processes_on_postgres_keep_one_conversation(postgres_dsn):
    import asyncpg

    from victor.sessions import PostgresSessionStore

    schema = f"victor_two_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(postgres_dsn)
    try:
        print("conflicts retried:", _run_two(postgres_dsn, schema))
        store = PostgresSessionStore(postgres_dsn, schema=schema)
        _assert_one_conversation(await store.load("shared"))
        await store.aclose()
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


async def test_a_conflicting_turn_stores_nothing_and_can_be_retried():
    """Two orchestrators of one process (or two processes) on one session: the turn that
    read an older version fails clearly and leaves the other's history whole."""
    gate = asyncio.Event()

    async def slow(messages, tools):
        await gate.wait()
        return "slow answer"

    fast = AgentOrchestrator(settings=Settings(), provider=FunctionProvider(echo), model="m")
    lagging = AgentOrchestrator(settings=Settings(), provider=FunctionProvider(slow), model="m")
    await fast.chat("first", session_id="c")
    pending = asyncio.create_task(lagging.chat("lagging", session_id="c"))
    await asyncio.sleep(0.05)
    await fast.chat("second", session_id="c")
    gate.set()
    with pytest.raises(SessionConflictError, match="retry the turn"):
        await pending
    assert [m.content for m in await fast.history("c")] == ["first", "ok", "second", "ok"]
    assert (await lagging.chat("lagging", session_id="c")).content == "slow answer"
    assert len(await fast.history("c")) == 6
    await fast.aclose()
    await lagging.aclose()


async def test_an_unusable_data_dir_fails_before_the_model_is_called(monkeypatch, tmp_path):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("VICTOR_DATA_DIR", str(tmp_path / "a-file" / "victor"))
    calls = []

    def model(messages, tools):
        calls.append(messages)
        return "paid for"

    orch = AgentOrchestrator(
        settings=Settings(),
        provider=FunctionProvider(model),
        model="m",
        _analytics_coordinator=None,
    )
    with pytest.raises(ConfigError, match="cannot open the session database"):
        await orch.chat("hello")
    assert calls == []
    await orch.aclose()


def test_write_behind_is_an_explicit_setting(monkeypatch):
    from victor.sessions import session_store_from_settings

    monkeypatch.setenv("VICTOR_SESSION_DURABILITY", "async")
    store = session_store_from_settings(Settings())
    assert store.durability == "async"
    monkeypatch.delenv("VICTOR_SESSION_DURABILITY")
    assert SQLiteSessionStore(Settings().sessions_path).durability == "sync"


async def test_postgres_store_survives_a_server_restart(throwaway_postgres):
    """The turn in flight when the server goes fails clearly; later turns work."""
    from victor.errors import SessionStoreError
    from victor.sessions import PostgresSessionStore

    store = PostgresSessionStore(throwaway_postgres.dsn, min_pool_size=3, max_pool_size=3)
    orch = AgentOrchestrator(
        settings=Settings(), provider=FunctionProvider(echo), model="m", session_store=store
    )
    await asyncio.gather(*(orch.chat(f"before {i}", session_id=f"s{i}") for i in range(3)))
    await asyncio.to_thread(throwaway_postgres.stop)
    with pytest.raises(SessionStoreError, match="session"):
        await orch.chat("while down", session_id="s0")
    await asyncio.to_thread(throwaway_postgres.start)
    for i in range(3):  # every pooled connection had died with the old server
        await orch.chat(f"after {i}", session_id=f"s{i}")
    assert [m.content for m in await orch.history("s0")] == ["before 0", "ok", "after 0", "ok"]
    await orch.aclose()


_COLD_START = """
import asyncio, sys
from victor import AgentOrchestrator, Settings
from victor.providers import FunctionProvider

async def main():
    async with AgentOrchestrator(
        settings=Settings(), provider=FunctionProvider(lambda m, t: "ok"), model="m"
    ) as orch:
        for i in range(3):
            await orch.chat(f"turn {i}", session_id=f"{sys.argv[1]}-{i}")

asyncio.run(main())
"""


async def test_processes_starting_together_on_a_new_data_dir_all_succeed():
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", _COLD_START, f"p{n}", stderr=asyncio.subprocess.PIPE
        )
        for n in range(4)
    ]
    for proc in procs:
        _, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, err.decode()[-2000:]
    store = SQLiteSessionStore(Settings().sessions_path)
    assert len(await store.list_sessions(limit=100)) == 12
    await store.aclose()
