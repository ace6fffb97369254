"""Two ``victor serve`` processes on two ports sharing PostgreSQL (sessions, keys, the
assignment table) and Redis (rate limits): a session continued on the other process
keeps its history and its variant, and a key's limits and budget are shared."""

from __future__ import annotations

import asyncio
import json
import uuid

import openai
import pytest
import websockets

from server_kit import ServeProcess
from test_server_keys import victor
from wire_server import Reply

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

EXPERIMENT = """\
experiments:
  - name: {name}
    variants:
      terse: {{system_prompt: "Variant terse."}}
      chatty: {{system_prompt: "Variant chatty."}}
    weights: {{terse: 0.5, chatty: 0.5}}
"""


def test_two_processes_share_sessions_variants_and_key_limits(
    tmp_path, postgres_dsn, redis_url, server
):
    name = f"scale-{uuid.uuid4().hex[:8]}"
    (tmp_path / "experiments.yaml").write_text(EXPERIMENT.format(name=name))
    config = tmp_path / "victor.yaml"
    config.write_text(
        f"server:\n  keys: {postgres_dsn}\n  redis: {redis_url}\n  key_cache_seconds: 0\n"
        f"orchestrator:\n  provider: openai\n  base_url: {server.openai_base_url}\n"
        f"  model: gpt-4o-mini\n  session_store: {postgres_dsn}\n"
        f"  experiments: experiments.yaml\n  assignment_table: {postgres_dsn}\n"
        f"  analytics: {postgres_dsn}\n"
    )
    env = {"OPENAI_API_KEY": "sk-test"}
    tenant = f"t{uuid.uuid4().hex[:8]}"
    made = victor(
        "keys", "create", "--tenant", tenant, "--rpm", "4", "--budget", "0.0003",
        "--config", str(config), env=env,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    one = ServeProcess(["--config", str(config)], {**env, "VICTOR_DATA_DIR": str(tmp_path / "a")})
    two = ServeProcess(["--config", str(config)], {**env, "VICTOR_DATA_DIR": str(tmp_path / "b")})
    with one, two:
        clients = [
            openai.OpenAI(base_url=f"{p.url}/v1", api_key=key, max_retries=0) for p in (one, two)
        ]

        def ask(client, text):
            return client.chat.completions.create(
                model="gpt-4o-mini",
                user="conversation",
                messages=[{"role": "user", "content": text}],
            )

        # 1,000 prompt tokens of gpt-4o-mini: 0.00015 USD a turn.
        server.enqueue(Reply(text="First answer.", input_tokens=1000, output_tokens=10))
        first = ask(clients[0], "First question")
        server.enqueue(Reply(text="Second answer.", input_tokens=1000, output_tokens=10))
        second = ask(clients[1], "Second question")
        variant = first.model_extra["victor"]["variant"]
        assert variant in ("terse", "chatty")
        assert second.model_extra["victor"]["variant"] == variant
        assert second.model_extra["victor"]["session_id"] == f"{tenant}:conversation"
        sent = server.requests[-1].body["messages"]
        assert [m["content"] for m in sent] == [
            f"Variant {variant}.",
            "First question",
            "First answer.",
            "Second question",
        ]
        # Two turns spent 0.0003 USD: the budget, shared, is spent on both processes.
        for client in clients:
            with pytest.raises(openai.RateLimitError) as spent:
                ask(client, "Third question")
            assert spent.value.code == "budget_exceeded"

    # Both processes' events are in the one analytics table (flushed at shutdown).
    session = f"{tenant}:conversation"
    events = asyncio.run(_events(postgres_dsn, session))
    assert events.count("chat_complete") == 2
    assert "experiment_assignment" in events

    # The rpm limit in Redis is shared as well: 3 a minute over both processes.
    made = victor(
        "keys", "create", "--tenant", tenant, "--rpm", "3", "--config", str(config), env=env
    )
    key = made.stdout.strip()
    with one, two:
        clients = [
            openai.OpenAI(base_url=f"{p.url}/v1", api_key=key, max_retries=0) for p in (one, two)
        ]
        for i in range(3):
            server.enqueue(Reply(text="ok"))
            clients[i % 2].models.list()  # not limited
            clients[i % 2].chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
            )
        with pytest.raises(openai.RateLimitError) as limited:
            clients[1].chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
            )
        assert limited.value.code == "rpm_limit_exceeded"


async def _events(dsn: str, session_id: str) -> list[str]:
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT type FROM victor_analytics_events WHERE session_id = $1", session_id
        )
    finally:
        await connection.close()
    return [row["type"] for row in rows]


def test_a_dashboard_on_one_process_shows_the_other_process_events(
    tmp_path, postgres_dsn, redis_url, server
):
    config = tmp_path / "victor.yaml"
    config.write_text(
        f"server:\n  redis: {redis_url}\n  dashboard_token: tok\n"
        f"orchestrator:\n  provider: openai\n  base_url: {server.openai_base_url}\n"
        f"  model: gpt-4o-mini\n  session_store: {postgres_dsn}\n  analytics: {postgres_dsn}\n"
    )
    env = {"OPENAI_API_KEY": "sk-test"}
    one = ServeProcess(["--config", str(config)], {**env, "VICTOR_DATA_DIR": str(tmp_path / "a")})
    two = ServeProcess(["--config", str(config)], {**env, "VICTOR_DATA_DIR": str(tmp_path / "b")})
    session = f"dash-{uuid.uuid4().hex[:8]}"

    async def watch() -> set[str]:
        seen: set[str] = set()
        ws_url = one.url.replace("http", "ws") + "/ws/analytics"
        async with websockets.connect(ws_url) as ws:
            await ws.send(json.dumps({"type": "hello", "token": "tok"}))
            welcome = json.loads(await ws.recv())
            assert welcome["type"] == "welcome"
            status = json.loads(await ws.recv())
            assert (status["type"], status["fanout"]) == ("status", "redis")
            server.enqueue(Reply(text="Hello from two."))
            answer = await asyncio.to_thread(
                openai.OpenAI(
                    base_url=f"{two.url}/v1", api_key="none", max_retries=0
                ).chat.completions.create,
                model="gpt-4o-mini",
                user=session,
                messages=[{"role": "user", "content": "hi"}],
            )
            assert answer.choices[0].message.content == "Hello from two."
            async with asyncio.timeout(10):
                while "chat_complete" not in seen:
                    frame = json.loads(await ws.recv())
                    if frame["type"] == "batch":
                        seen |= {e["type"] for e in frame["events"] if e["session"] == session}
        return seen

    with one, two:
        assert "chat_complete" in asyncio.run(watch())
