"""API keys: stored hashed, per-tenant isolation, revocation, allowed models, rpm, tpm
and spend budgets; ``victor keys`` and ``victor serve`` from the command line."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time

import httpx
import openai
import pytest

from server_kit import ROOT, ServedApp, ServeProcess, orchestrator_for
from victor.providers import ScriptedProvider
from victor.server.keys import SQLiteKeyStore, hash_key


def make_keys(path, *specs):
    """Keys made in a store of their own (closed after), as the CLI would."""

    async def run():
        store = SQLiteKeyStore(path)
        try:
            return [await store.create(**spec) for spec in specs]
        finally:
            await store.aclose()

    return asyncio.run(run())


def client(served, key) -> openai.OpenAI:
    return openai.OpenAI(base_url=served.base_url, api_key=key, max_retries=0)


ASK = {"messages": [{"role": "user", "content": "Hi"}]}


@pytest.fixture
def keys_db(tmp_path):
    return tmp_path / "keys.db"


def serve_with_keys(keys_db, script, **options) -> tuple[ServedApp, ScriptedProvider]:
    provider = ScriptedProvider(script, cycle=True)
    served = ServedApp(
        orchestrator_for(provider),
        key_store=SQLiteKeyStore(keys_db),
        key_cache_seconds=options.pop("key_cache_seconds", 0),
        **options,
    ).start()
    return served, provider


def test_keys_are_stored_hashed(keys_db):
    [(key, record)] = make_keys(keys_db, {"tenant_id": "acme", "name": "ci"})
    assert key.startswith("vk-") and len(key) > 40
    with sqlite3.connect(keys_db) as db:
        dump = "\n".join(db.iterdump())
    assert key not in dump and key[10:] not in dump
    assert hash_key(key) in dump and record.prefix == key[:10]


def test_tenants_cannot_reach_each_others_sessions_and_revoked_keys_are_refused(keys_db):
    (acme, _), (globex, globex_record) = make_keys(
        keys_db, {"tenant_id": "acme"}, {"tenant_id": "globex"}
    )
    served, model = serve_with_keys(keys_db, ["Secret plans."])
    try:
        answer = client(served, acme).chat.completions.create(
            model="gpt-4o-mini", user="plans", **ASK
        )
        assert answer.model_extra["victor"]["session_id"] == "acme:plans"
        http = httpx.Client(base_url=served.base_url)
        as_acme = {"Authorization": f"Bearer {acme}"}
        as_globex = {"Authorization": f"Bearer {globex}"}
        assert http.get("/sessions/plans", headers=as_acme).status_code == 200
        assert http.get("/sessions/acme:plans", headers=as_acme).status_code == 200
        # globex guesses the id, scoped or not: no such session.
        for guess in ("acme:plans", "plans"):
            refused = http.get(f"/sessions/{guess}", headers=as_globex)
            assert refused.status_code == 404, guess
            assert refused.json()["error"]["code"] == "session_not_found"
        with pytest.raises(openai.NotFoundError):
            client(served, globex).chat.completions.create(
                model="gpt-4o-mini", user="acme:plans", **ASK
            )
        feedback = http.post(
            "/feedback", json={"session_id": "acme:plans", "score": 0}, headers=as_globex
        )
        assert feedback.status_code == 404
        assert len(model.calls) == 1  # the refused turn never reached the model
        # No key, a wrong key, a revoked key: 401.
        with pytest.raises(openai.AuthenticationError):
            client(served, "vk-wrong").chat.completions.create(model="gpt-4o-mini", **ASK)
        assert http.post("/chat", json={"message": "hi"}).status_code == 401
        assert (
            asyncio.run(_revoke(keys_db, globex_record.id)) is True
        )  # as `victor keys revoke` would, from another process
        with pytest.raises(openai.AuthenticationError) as revoked:
            client(served, globex).chat.completions.create(model="gpt-4o-mini", **ASK)
        assert revoked.value.code == "invalid_api_key"
        assert http.get("/models", headers=as_acme).status_code == 200
    finally:
        served.stop()


async def _revoke(path, key_id):
    store = SQLiteKeyStore(path)
    try:
        return await store.revoke(key_id)
    finally:
        await store.aclose()


def test_allowed_models_rpm_tpm_and_budget(keys_db):
    (only_mini, _), (rpm2, _), (tpm, _), (budget, _) = make_keys(
        keys_db,
        {"tenant_id": "a", "allowed_models": ["gpt-4o-mini"]},
        {"tenant_id": "b", "rpm": 2},
        {"tenant_id": "c", "tpm": 100},
        {"tenant_id": "d", "budget_usd": 0.0001, "budget_period": "day"},
    )
    # 1,000 input tokens of gpt-4o-mini cost 0.00015 USD: over the budget after one turn.
    served, _ = serve_with_keys(
        keys_db,
        [{"content": "ok", "usage": {"input_tokens": 1000, "output_tokens": 80}}],
    )
    try:
        assert [m.id for m in client(served, only_mini).models.list()] == ["gpt-4o-mini"]
        with pytest.raises(openai.PermissionDeniedError) as denied:
            client(served, only_mini).chat.completions.create(model="gpt-4o", **ASK)
        assert denied.value.code == "model_not_allowed"
        client(served, only_mini).chat.completions.create(model="gpt-4o-mini", **ASK)

        for _ in range(2):
            client(served, rpm2).chat.completions.create(model="gpt-4o-mini", **ASK)
        with pytest.raises(openai.RateLimitError) as limited:
            client(served, rpm2).chat.completions.create(model="gpt-4o-mini", **ASK)
        assert limited.value.code == "rpm_limit_exceeded"
        assert int(limited.value.response.headers["retry-after"]) >= 1

        # 1,080 tokens of a turn drain a 100-tpm bucket: the next turn waits.
        client(served, tpm).chat.completions.create(model="gpt-4o-mini", **ASK)
        with pytest.raises(openai.RateLimitError) as tokens:
            client(served, tpm).chat.completions.create(model="gpt-4o-mini", **ASK)
        assert tokens.value.code == "tpm_limit_exceeded"

        client(served, budget).chat.completions.create(model="gpt-4o-mini", **ASK)
        with pytest.raises(openai.RateLimitError) as spent:
            client(served, budget).chat.completions.create(model="gpt-4o-mini", **ASK)
        assert spent.value.code == "budget_exceeded"
        assert spent.value.body["type"] == "insufficient_quota"
        metrics = httpx.get(f"{served.url}/metrics").text
        assert 'victor_cost_usd_total{model="gpt-4o-mini",tenant="d"}' in metrics
        assert 'status="429",tenant="b"' in metrics
    finally:
        served.stop()


def victor(*args, env=None, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "victor.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), **(env or {})},
        **kwargs,
    )


def test_victor_keys_create_list_revoke(tmp_path):
    db = str(tmp_path / "keys.db")
    made = victor(
        "keys", "create", "--tenant", "acme", "--name", "ci", "--models", "a,b",
        "--budget", "5", "--rpm", "60", "--keys", db,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("vk-") and "not shown again" in made.stderr
    listed = victor("keys", "list", "--json", "--keys", db)
    [record] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert record["tenant_id"] == "acme" and record["allowed_models"] == ["a", "b"]
    assert record["budget_usd"] == 5 and record["rpm"] == 60 and record["revoked_at"] is None
    assert key not in listed.stdout
    assert victor("keys", "revoke", record["id"], "--keys", db).returncode == 0
    again = victor("keys", "revoke", record["id"], "--keys", db)
    assert again.returncode == 2 and "no active key" in again.stderr
    assert "revoked" in victor("keys", "list", "--keys", db).stdout
    bad = victor("keys", "create", "--tenant", "a:b", "--keys", db)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


def test_victor_serve_without_keys_is_loopback_only_and_says_so(tmp_path, server):
    from wire_server import Reply

    env = {
        "VICTOR_PROVIDER": "openai",
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": server.openai_base_url,
        "VICTOR_MODEL": "gpt-4o-mini",
        "VICTOR_DATA_DIR": str(tmp_path / "data"),
    }
    refused = victor("serve", "--host", "0.0.0.0", "--port", "1", env=env)
    assert refused.returncode == 2
    assert "without authentication" in refused.stderr and "loopback" in refused.stderr
    server.enqueue(Reply(text="Hello from the wire."))
    process = ServeProcess([], env).start()
    try:
        answer = openai.OpenAI(base_url=f"{process.url}/v1", api_key="x").chat.completions.create(
            model="gpt-4o-mini", **ASK
        )
        assert answer.choices[0].message.content == "Hello from the wire."
        assert server.requests[-1].body["model"] == "gpt-4o-mini"
        # This machine only: the live dashboard is served beside the API.
        page = httpx.get(f"{process.url}/dashboard")
        assert page.status_code == 200 and "uPlot" in page.text
    finally:
        err = process.stop()
    assert "WITHOUT AUTHENTICATION" in err


def test_victor_serve_with_a_key_file_config(tmp_path, server):
    from wire_server import Reply

    config = tmp_path / "victor.yaml"
    config.write_text(
        "server:\n  keys: keys.db\n  host: 0.0.0.0\n"
        f"orchestrator:\n  provider: openai\n  base_url: {server.openai_base_url}\n"
        "  model: gpt-4o-mini\n  session_config: session.yaml\n"
    )
    (tmp_path / "session.yaml").write_text("system_prompt: You are terse.\n")
    env = {"OPENAI_API_KEY": "sk-test", "VICTOR_DATA_DIR": str(tmp_path / "data")}
    made = victor("keys", "create", "--tenant", "acme", "--config", str(config), env=env)
    key = made.stdout.strip()
    server.enqueue(Reply(text="Terse hello."))
    process = ServeProcess(["--config", str(config)], env).start()
    try:
        ai = openai.OpenAI(base_url=f"{process.url}/v1", api_key=key, max_retries=0)
        answer = ai.chat.completions.create(model="gpt-4o-mini", user="s1", **ASK)
        assert answer.choices[0].message.content == "Terse hello."
        sent = server.requests[-1].body["messages"]
        assert sent[0] == {"role": "system", "content": "You are terse."}
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(
                base_url=f"{process.url}/v1", api_key="nope", max_retries=0
            ).chat.completions.create(model="gpt-4o-mini", **ASK)
        # Every tenant's traffic is on the dashboard: beside keys, no token, no page.
        assert httpx.get(f"{process.url}/dashboard").status_code == 404
    finally:
        err = process.stop()
    assert "API keys required" in err
    assert "dashboard off: set server.dashboard_token" in err


def test_a_cached_key_is_refused_once_its_cache_time_has_passed(keys_db):
    [(key, record)] = make_keys(keys_db, {"tenant_id": "acme"})
    served, _ = serve_with_keys(keys_db, ["ok"], key_cache_seconds=0.5)
    try:
        http = httpx.Client(base_url=served.base_url, headers={"Authorization": f"Bearer {key}"})
        assert http.get("/models").status_code == 200
        assert asyncio.run(_revoke(keys_db, record.id))
        deadline = time.monotonic() + 5
        while http.get("/models").status_code == 200:
            assert time.monotonic() < deadline, "the revoked key is still accepted"
            time.sleep(0.05)
        assert http.get("/models").status_code == 401
    finally:
        served.stop()


def test_victor_serve_offers_the_tools_of_an_mcp_server(tmp_path, server):
    from wire_server import Reply, WireToolCall

    weather = ROOT / "examples" / "servers" / "weather_server.py"
    config = tmp_path / "victor.yaml"
    config.write_text(
        f"orchestrator:\n  provider: openai\n  base_url: {server.openai_base_url}\n"
        "  model: gpt-4o-mini\n  mcp_servers:\n"
        f"    - {{command: {sys.executable}, args: [{weather}]}}\n"
    )
    env = {"OPENAI_API_KEY": "sk-test", "VICTOR_DATA_DIR": str(tmp_path / "data")}
    server.enqueue(
        Reply(tool_calls=[WireToolCall("get_forecast", {"city": "Oslo"})]),
        Reply(text="Take an umbrella."),
    )
    with ServeProcess(["--config", str(config)], env) as process:
        answer = openai.OpenAI(base_url=f"{process.url}/v1", api_key="x").chat.completions.create(
            model="gpt-4o-mini", **ASK
        )
    assert answer.choices[0].message.content == "Take an umbrella."
    offered = [t["function"]["name"] for t in server.requests[0].body["tools"]]
    assert offered == ["get_forecast"]
    assert server.requests[1].body["messages"][-1]["content"] == "Rain in Oslo tomorrow, 9 C"


@pytest.mark.postgres
def test_a_key_store_that_is_down_is_a_503_and_back_when_it_is(throwaway_postgres):
    from victor.server.keys import PostgresKeyStore

    async def make() -> str:
        store = PostgresKeyStore(throwaway_postgres.dsn)
        try:
            key, _ = await store.create("acme")
            return key
        finally:
            await store.aclose()

    key = asyncio.run(make())
    served = ServedApp(
        orchestrator_for(ScriptedProvider(["ok"], cycle=True)),
        key_store=PostgresKeyStore(throwaway_postgres.dsn),
        key_cache_seconds=0,
    ).start()
    try:
        ai = client(served, key)
        ai.chat.completions.create(model="gpt-4o-mini", **ASK)
        throwaway_postgres.stop()
        with pytest.raises(openai.APIStatusError) as down:
            ai.chat.completions.create(model="gpt-4o-mini", **ASK)
        assert down.value.status_code == 503
        assert down.value.body["code"] == "key_store_unavailable"
        throwaway_postgres.start()
        deadline = time.monotonic() + 20
        while True:
            try:
                ai.chat.completions.create(model="gpt-4o-mini", **ASK)
                break
            except openai.APIStatusError as exc:
                assert exc.status_code == 503 and time.monotonic() < deadline
                time.sleep(0.2)
    finally:
        served.stop()
