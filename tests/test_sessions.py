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


def test_bloom_filter_has_no_false_negatives_and_few_false_positives():
    from victor.sessions._bloom import BloomFilter

    bloom = BloomFilter(10_000, error_rate=0.01)
    for i in range(10_000):
        bloom.add(f"session-{i}")
    assert all(f"session-{i}" in bloom for i in range(10_000))
    false_positives = sum(f"other-{i}" in bloom for i in range(10_000))
    assert false_positives < 300  # about 1 % expected


async def test_sqlite_new_sessions_skip_the_database(tmp_path):
    path = tmp_path / "b.db"
    first = SQLiteSessionStore(path)
    await first.create("old", msgs("kept"))
    await first.aclose()

    store = SQLiteSessionStore(path)
    reads = 0
    original = store._call

    async def counting(fn):
        nonlocal reads
        reads += 1
        return await original(fn)

    store._call = counting
    for i in range(50):
        assert await store.load(f"brand-new-{i}") is None
    assert reads <= 2  # only the filter's rare false positives reach the database
    assert [m.content for m in await store.load("old")] == ["kept"]
    await store.aclose()


async def test_a_cancelled_read_does_not_break_the_store(tmp_path):
    path = tmp_path / "cancel.db"
    first = SQLiteSessionStore(path)
    for i in range(200):
        await first.create(f"s{i}", msgs(f"m{i}"))
    await first.aclose()
    store = SQLiteSessionStore(path, cache_size=1)
    for i in range(20):  # cancel reads at random points of their life
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(store.load(f"s{i}"), 0)
    assert [m.content for m in await store.load("s150")] == ["m150"]
    await store.append("s150", msgs("later"))
    await store.flush()
    assert store._thread.is_alive()
    await store.aclose()


async def test_an_unusable_path_fails_clearly_every_time(tmp_path):
    (tmp_path / "file").write_text("")
    store = SQLiteSessionStore(tmp_path / "file" / "sub" / "s.db")
    for _ in range(2):
        with pytest.raises(RuntimeError, match="cannot open the session database"):
            await asyncio.wait_for(store.load("x"), 5)
    with pytest.raises(RuntimeError, match="cannot open"):
        await asyncio.wait_for(store.append("x", msgs("lost?")), 5)


async def test_a_closed_store_refuses_work(tmp_path):
    store = SQLiteSessionStore(tmp_path / "closed.db")
    await store.create("k", msgs("a"))
    await store.aclose()
    for call in (store.append("k", msgs("b")), store.list_sessions(), store.load("other")):
        with pytest.raises(RuntimeError, match="closed"):
            await asyncio.wait_for(call, 5)


async def test_orchestrators_of_one_process_share_conversations():
    from victor import AgentOrchestrator, Settings
    from victor.providers import FunctionProvider

    def model(messages, tools):
        return f"{len(messages)} messages"

    a = AgentOrchestrator(settings=Settings(), provider=FunctionProvider(model), model="m")
    b = AgentOrchestrator(settings=Settings(), provider=FunctionProvider(model), model="m")
    assert a.session_store is b.session_store
    await a.chat("warm", session_id="w")
    assert (await a.chat("I am Ann", session_id="conv")).content == "1 messages"
    assert (await b.chat("who am I?", session_id="conv")).content == "3 messages"
    assert (await a.chat("and now?", session_id="conv")).content == "5 messages"
    await a.aclose()
    assert (await b.chat("still open", session_id="conv")).content == "7 messages"
    await b.aclose()
