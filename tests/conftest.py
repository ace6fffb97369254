"""Shared fixtures: an isolated data directory for every test, and the local services.

Tests needing PostgreSQL or Redis skip when the service is down, saying why; with
``VICTOR_REQUIRE_SERVICES=1`` (as CI runs them) they fail instead.
"""

from __future__ import annotations

import os
import socket
import uuid

import pytest

REQUIRE_SERVICES = os.environ.get("VICTOR_REQUIRE_SERVICES") == "1"
POSTGRES_DSN = os.environ.get(
    "VICTOR_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("VICTOR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VICTOR_DATA_DIR", str(tmp_path / "victor-data"))
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} (VICTOR_REQUIRE_SERVICES=1)")
    pytest.skip(message)


@pytest.fixture
def postgres_dsn() -> str:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    return POSTGRES_DSN


@pytest.fixture
async def pg_schema(postgres_dsn):
    """A fresh schema name in the test database; the schema and all it holds are dropped
    after the test."""
    import asyncpg

    schema = f"test_{uuid.uuid4().hex[:12]}"
    yield schema
    conn = await asyncpg.connect(postgres_dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
def throwaway_postgres(postgres_dsn):
    """A PostgreSQL server of the test's own, on a free port, that it may stop and start."""
    from pg_server import ThrowawayPostgres

    server = ThrowawayPostgres().init()
    server.start()
    yield server
    server.remove()


@pytest.fixture
def redis_url() -> str:
    require_service("Redis", "127.0.0.1", 6379)
    return REDIS_URL


@pytest.fixture(scope="module")
def wire():
    """The wire-protocol server (OpenAI and Anthropic), one per test module."""
    from wire_server import WireServer

    with WireServer() as server:
        yield server


@pytest.fixture
def server(wire):
    """The wire server with an empty script and no recorded requests."""
    wire.reset()
    return wire


@pytest.fixture
def sleeps():
    from provider_kit import Sleeps

    return Sleeps()
