"""schemathesis against the server's OpenAPI document: for any input it generates, the
server answers without a 5xx, and every refusal is a JSON error in OpenAI's shape."""

from __future__ import annotations

import asyncio

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from server_kit import ServedApp, orchestrator_for
from victor import tool
from victor.providers import SimulatedProvider
from victor.server.keys import SQLiteKeyStore


@tool
async def lookup(term: str) -> str:
    """Look a term up.

    Args:
        term: What to look up.
    """
    return f"{term}: found"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys") / "keys.db"

    async def make_key() -> str:
        store = SQLiteKeyStore(path)
        try:
            key, _ = await store.create("fuzz", rpm=100_000)
            return key
        finally:
            await store.aclose()

    key = asyncio.run(make_key())
    provider = SimulatedProvider(seed=3, tool_call_rate=0.5)
    app = ServedApp(
        orchestrator_for(provider, [lookup], model="simulated-model"),
        key_store=SQLiteKeyStore(path),
        max_body_bytes=64 * 1024,
    ).start()
    yield app, key
    app.stop()


@pytest.fixture
def api_schema(served):
    app, _ = served
    return schemathesis.openapi.from_url(f"{app.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_input_makes_the_server_fail(case, served):
    _, key = served
    response = case.call(headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert response.status_code < 500, (case.method, case.path, case.body, response.text)
    if response.status_code >= 400:
        error = response.json()["error"]
        assert isinstance(error["message"], str) and error["message"]
        assert isinstance(error["type"], str)
