import asyncio

import pytest

from victor.protocols import Message
from victor.sessions import InMemorySessionStore, SQLiteSessionStore


def msgs(*texts):
    return [
        Message(role="user" if i % 2 == 0 else "assistant", content=t) for i, t in enumerate(texts)
    ]


@pytest.fixture(params=["memory", "sqlite"])
async def store(request, tmp_path):
    s = (
        InMemorySessionStore()
        if request.param == "memory"
        else SQLiteSessionStore(tmp_path / "s.db")
    )
    yield s
    await s.aclose()


async def test_store_contract(store):
    assert await store.load("x") is None
    await store.create("x", msgs("a", "b"))
    await store.append("x", msgs("c", "d"))
    assert [m.content for m in await store.load("x")] == ["a", "b", "c", "d"]
    await store.replace("x", msgs("z"))
    assert [m.content for m in await store.load("x")] == ["z"]
    await store.create("y", msgs("q"))
    assert (await store.list_sessions())[0] in ("x", "y")
    assert set(await store.list_sessions()) == {"x", "y"}
    assert await store.delete("x") is True
    assert await store.delete("x") is False
    assert await store.load("x") is None


async def test_sqlite_survives_reopen_and_keeps_tool_messages(tmp_path):
    path = tmp_path / "deep" / "sessions.db"
    store = SQLiteSessionStore(path)
    from victor.protocols import ToolCall

    history = [
        Message(role="user", content="weather?"),
        Message(role="assistant", tool_calls=[ToolCall(id="c1", name="w", arguments={"a": 1})]),
        Message(role="tool", content="sunny", tool_call_id="c1", name="w", is_error=False),
    ]
    await store.create("s", history)
    await store.aclose()
    reopened = SQLiteSessionStore(path)
    assert await reopened.load("s") == history
    await reopened.append("s", msgs("more"))
    await reopened.aclose()
    again = SQLiteSessionStore(path)
    assert len(await again.load("s")) == 4
    await again.aclose()


async def test_sqlite_many_concurrent_sessions(tmp_path):
    store = SQLiteSessionStore(tmp_path / "c.db", cache_size=10)

    async def converse(i):
        await store.create(f"s{i}", msgs(f"hello {i}"))
        for j in range(5):
            await store.append(f"s{i}", msgs(f"turn {i}.{j}"))
            await asyncio.sleep(0)

    await asyncio.gather(*(converse(i) for i in range(200)))
    await store.flush()
    fresh = SQLiteSessionStore(tmp_path / "c.db")
    for i in (0, 57, 199):
        assert [m.content for m in await fresh.load(f"s{i}")] == [
            f"hello {i}",
            *[f"turn {i}.{j}" for j in range(5)],
        ]
    assert len(await fresh.list_sessions(limit=1000)) == 200
    await store.aclose()
    await fresh.aclose()
