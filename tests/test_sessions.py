"""The session store contract, run against the memory, SQLite and PostgreSQL stores, and
what each store adds (SQLite's writer thread, PostgreSQL's pool)."""

import asyncio
import uuid

import pytest

from victor.errors import ConfigError, SessionConflictError, SessionStoreError
from victor.protocols import Message, ToolCall
from victor.sessions import InMemorySessionStore, SQLiteSessionStore


def msgs(*texts):
    return [
        Message(role="user" if i % 2 == 0 else "assistant", content=t) for i, t in enumerate(texts)
    ]


def contents(history):
    return [m.content for m in history]


class Stores:
    """Makes stores of one kind over the same data: a second store stands for another
    process (its own cache, its own connection). PostgreSQL stores use a schema of
    their own, dropped at the end."""

    def __init__(self, kind, tmp_path, request):
        self.kind = kind
        self.tmp_path = tmp_path
        self.made = []
        self.memory = None
        if kind == "postgres":
            self.dsn = request.getfixturevalue("postgres_dsn")
            self.schema = f"victor_sessions_{uuid.uuid4().hex[:12]}"

    def new(self, **options):
        if self.kind == "memory":
            self.memory = self.memory or InMemorySessionStore()
            store = self.memory
        elif self.kind == "sqlite":
            store = SQLiteSessionStore(self.tmp_path / "s.db", **options)
        else:
            from victor.sessions import PostgresSessionStore

            store = PostgresSessionStore(self.dsn, schema=self.schema, max_pool_size=4, **options)
        self.made.append(store)
        return store

    async def close(self):
        for store in self.made:
            await store.aclose()
        if self.kind == "postgres":
            import asyncpg

            conn = await asyncpg.connect(self.dsn)
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
            finally:
                await conn.close()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def stores(request, tmp_path):
    made = Stores(request.param, tmp_path, request)
    yield made
    await made.close()


@pytest.fixture
async def store(stores):
    return stores.new()


async def test_read_write_replace_delete(store):
    assert await store.load("x") is None
    assert await store.read("x") is None
    await store.create("x", msgs("a", "b"))
    await store.append("x", msgs("c", "d"))
    assert contents(await store.load("x")) == ["a", "b", "c", "d"]
    assert (await store.read("x")).version == 2
    await store.replace("x", msgs("z"))
    assert contents(await store.load("x")) == ["z"]
    await store.create("y", msgs("q"))
    assert (await store.list_sessions())[0] in ("x", "y")
    assert set(await store.list_sessions()) == {"x", "y"}
    assert await store.delete("x") is True
    assert await store.delete("x") is False
    assert await store.load("x") is None


async def test_a_write_on_a_stale_version_stores_nothing(store):
    assert await store.write("s", msgs("one"), expected_version=0) == 1
    with pytest.raises(SessionConflictError) as caught:
        await store.write("s", msgs("lost"), expected_version=0)
    assert caught.value.retryable and caught.value.found == 1
    assert await store.write("s", msgs("two"), expected_version=1) == 2
    with pytest.raises(SessionConflictError):
        await store.write("s", msgs("lost"), expected_version=1, replace=True)
    with pytest.raises(SessionConflictError):
        await store.create("s", msgs("lost"))
    stored = await store.read("s")
    assert contents(stored.messages) == ["one", "two"] and stored.version == 2


async def test_another_writer_is_seen_and_never_served_stale(stores):
    mine, theirs = stores.new(), stores.new()
    await mine.create("s", msgs("hello"))
    assert contents(await mine.load("s")) == ["hello"]  # now cached by `mine`
    assert contents(await theirs.load("s")) == ["hello"]
    await theirs.write("s", msgs("from the other process"), expected_version=1)
    stored = await mine.read("s")
    assert contents(stored.messages) == ["hello", "from the other process"]
    assert stored.version == 2
    await theirs.replace("s", msgs("compacted"))
    assert contents(await mine.load("s")) == ["compacted"]
    await theirs.delete("s")
    assert await mine.read("s") is None


async def test_concurrent_writers_on_one_version_exactly_one_wins(stores):
    writers = [stores.new() for _ in range(3)]
    await writers[0].create("race", msgs("start"))
    outcomes = await asyncio.gather(
        *(w.write("race", msgs(f"by {i}"), expected_version=1) for i, w in enumerate(writers)),
        return_exceptions=True,
    )
    assert sum(o == 2 for o in outcomes) == 1
    assert sum(isinstance(o, SessionConflictError) for o in outcomes) == 2
    assert len(await writers[1].load("race")) == 2


async def test_sessions_listed_by_tenant(store):
    for session_id in ("acme:1", "acme:2", "globex:1", "plain", "acme-not:1"):
        await store.create(session_id, msgs("hi"))
    assert set(await store.list_sessions(tenant_id="acme")) == {"acme:1", "acme:2"}
    assert await store.list_sessions(tenant_id="globex") == ["globex:1"]
    assert await store.list_sessions(tenant_id="nobody") == []
    assert len(await store.list_sessions()) == 5
    assert len(await store.list_sessions(limit=2)) == 2


async def test_tool_messages_and_odd_text_round_trip(stores):
    store = stores.new()
    history = [
        Message(role="user", content="clipboard \ud800 paste \x00 and \U0001f600"),
        Message(role="assistant", tool_calls=[ToolCall(id="c1", name="w", arguments={"a": 1})]),
        Message(role="tool", content="sunny", tool_call_id="c1", name="w", is_error=True),
    ]
    await store.create("odd", history)
    other = stores.new()
    loaded = await other.load("odd")
    assert loaded == history
    assert loaded[0].content == "clipboard \ufffd paste \ufffd and \U0001f600"


# -- SQLite ---------------------------------------------------------------------------


async def test_sqlite_survives_reopen(tmp_path):
    path = tmp_path / "deep" / "sessions.db"
    store = SQLiteSessionStore(path)
    await store.create("s", msgs("a", "b"))
    await store.aclose()
    reopened = SQLiteSessionStore(path)
    assert contents(await reopened.load("s")) == ["a", "b"]
    await reopened.append("s", msgs("more"))
    await reopened.aclose()
    again = SQLiteSessionStore(path)
    assert (await again.read("s")).version == 2
    await again.aclose()


async def test_sqlite_many_concurrent_sessions_group_committed(tmp_path):
    store = SQLiteSessionStore(tmp_path / "c.db", cache_size=10)

    async def converse(i):
        await store.create(f"s{i}", msgs(f"hello {i}"))
        for j in range(5):
            await store.append(f"s{i}", msgs(f"turn {i}.{j}"))

    await asyncio.gather(*(converse(i) for i in range(200)))
    fresh = SQLiteSessionStore(tmp_path / "c.db")
    for i in (0, 57, 199):
        assert contents(await fresh.load(f"s{i}")) == [
            f"hello {i}",
            *[f"turn {i}.{j}" for j in range(5)],
        ]
    assert len(await fresh.list_sessions(limit=1000)) == 200
    await store.aclose()
    await fresh.aclose()


async def test_sqlite_a_write_that_cannot_be_stored_fails_alone(tmp_path):
    """Writes committed in one group: the bad one fails, its neighbours are stored."""
    store = SQLiteSessionStore(tmp_path / "g.db")
    await store.create("warm", msgs("x"))
    unserialisable = Message(role="user", content="bad", metadata={"handle": object()})
    results = await asyncio.gather(
        *(
            store.create(f"s{i}", [unserialisable] if i == 7 else msgs(f"ok {i}"))
            for i in range(20)
        ),
        return_exceptions=True,
    )
    assert isinstance(results[7], SessionStoreError)
    assert "s7" in str(results[7])
    assert all(r is None for i, r in enumerate(results) if i != 7)
    await store.aclose()
    reopened = SQLiteSessionStore(tmp_path / "g.db")
    for i in range(20):
        assert (await reopened.load(f"s{i}")) == (None if i == 7 else msgs(f"ok {i}"))
    await reopened.aclose()


async def test_sqlite_write_behind_is_a_choice(tmp_path):
    with pytest.raises(ConfigError, match="durability"):
        SQLiteSessionStore(tmp_path / "x.db", durability="later")
    store = SQLiteSessionStore(tmp_path / "wb.db", durability="async")
    await store.create("s", msgs("a"))
    await store.append("s", msgs("b"))
    assert contents(await store.load("s")) == ["a", "b"]  # reads follow the writes
    await store.write("s", msgs("stale"), expected_version=0)  # refused later, counted
    await store.flush()
    assert store.write_errors == 1
    assert contents(await store.load("s")) == ["a", "b"]
    await store.aclose()


async def test_sqlite_an_older_file_is_migrated(tmp_path):
    import sqlite3

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        """CREATE TABLE sessions (session_id TEXT PRIMARY KEY, created_at REAL NOT NULL,
               updated_at REAL NOT NULL, next_seq INTEGER NOT NULL DEFAULT 0);
           CREATE TABLE messages (session_id TEXT NOT NULL, seq INTEGER NOT NULL,
               body TEXT NOT NULL, PRIMARY KEY (session_id, seq)) WITHOUT ROWID;
           INSERT INTO sessions VALUES ('acme:old', 1, 1, 1);
           INSERT INTO messages VALUES ('acme:old', 0, '{"role":"user","content":"kept"}');"""
    )
    conn.close()
    store = SQLiteSessionStore(path)
    stored = await store.read("acme:old")
    assert contents(stored.messages) == ["kept"] and stored.version == 1
    assert await store.list_sessions(tenant_id="acme") == ["acme:old"]
    await store.write("acme:old", msgs("more"), expected_version=1)
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
    assert contents(await store.load("s150")) == ["m150"]
    await store.append("s150", msgs("later"))
    await store.flush()
    assert store._thread.is_alive()
    await store.aclose()


async def test_an_unusable_path_fails_clearly_every_time(tmp_path):
    (tmp_path / "file").write_text("")
    store = SQLiteSessionStore(tmp_path / "file" / "sub" / "s.db")
    for call in (store.open, lambda: store.load("x"), lambda: store.append("x", msgs("?"))):
        with pytest.raises(ConfigError, match=r"cannot open the session database .*file/sub"):
            await asyncio.wait_for(call(), 5)


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


# -- PostgreSQL -----------------------------------------------------------------------


async def test_postgres_from_settings_and_bad_names(monkeypatch, postgres_dsn):
    from victor import Settings
    from victor.sessions import PostgresSessionStore, session_store_from_settings

    monkeypatch.setenv("VICTOR_SESSION_STORE", postgres_dsn)
    store = session_store_from_settings(Settings())
    assert isinstance(store, PostgresSessionStore) and store.dsn == postgres_dsn
    with pytest.raises(ConfigError, match="identifier"):
        PostgresSessionStore(postgres_dsn, schema='x"; DROP TABLE y; --')


async def test_postgres_unreachable_fails_clearly():
    from victor.sessions import PostgresSessionStore

    store = PostgresSessionStore("postgresql://postgres@127.0.0.1:1/none")
    with pytest.raises(SessionStoreError, match="cannot connect to the session database"):
        await store.read("x")
    await store.aclose()
