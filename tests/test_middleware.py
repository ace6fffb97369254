"""Middleware: run by the orchestrator around chat and stream, and the built-ins
(logging with redaction, authentication, rate limiting in memory and in Redis)."""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import subprocess
import time
import uuid

import pytest

from helpers import CollectingExporter
from victor.agent.coordinators import (
    AnalyticsCoordinator,
    ConfigCoordinator,
    MiddlewareCoordinator,
)
from victor.agent.orchestrator import AgentOrchestrator
from victor.config.settings import Settings
from victor.errors import AuthenticationError, RateLimiterUnavailable, RateLimitExceeded
from victor.middleware import (
    REDACTED,
    AuthenticationMiddleware,
    InMemoryTokenBucket,
    LoggingMiddleware,
    RateLimitMiddleware,
    RedisTokenBucket,
    Request,
    RequestMiddleware,
    api_key_validator,
    redact_mapping,
    redact_text,
)
from victor.protocols import IConfigProvider
from victor.providers import ScriptedProvider
from victor.sessions import InMemorySessionStore


class TenantPlan(IConfigProvider):
    def priority(self) -> int:
        return 10

    async def get_config(self, session_id):
        return {"plan": "gold"}


def orchestrator(middleware: MiddlewareCoordinator, **kwargs) -> AgentOrchestrator:
    return AgentOrchestrator(
        settings=Settings(),
        provider=ScriptedProvider(["model answer"], cycle=True),
        model="local",
        session_store=InMemorySessionStore(),
        _middleware_coordinator=middleware,
        _config_coordinator=ConfigCoordinator(providers=[TenantPlan()]),
        **kwargs,
    )


async def test_wired_middleware_sees_session_tenant_and_config_for_chat_and_stream():
    seen = []

    async def record(orchestrator, func, message, **kwargs):
        seen.append((orchestrator, func.__name__, message, kwargs))

    middleware = MiddlewareCoordinator()
    middleware.add_middleware(record)
    orch = orchestrator(middleware)
    await orch.chat("hello", session_id="acme:s1")
    chunks = [c async for c in orch.stream("again", session_id="s2", tenant_id="acme")]
    await orch.aclose()
    assert chunks[-1].response.content == "model answer"
    (o1, f1, m1, k1), (o2, f2, m2, k2) = seen
    assert o1 is orch and o2 is orch and (f1, f2) == ("chat", "stream")
    assert (m1, k1["session_id"], k1["tenant_id"]) == ("hello", "acme:s1", "acme")
    assert (m2, k2["session_id"], k2["tenant_id"]) == ("again", "acme:s2", "acme")
    assert k1["config"]["plan"] == "gold"


async def test_an_early_answer_replaces_the_turn_in_chat_and_stream():
    async def canned(orchestrator, func, message, **kwargs):
        return "we are closed today" if "open" in message else None

    middleware = MiddlewareCoordinator()
    middleware.add_middleware(canned)
    orch = orchestrator(middleware)
    answer = await orch.chat("are you open?", session_id="s")
    chunks = [c async for c in orch.stream("open now?", session_id="s")]
    normal = await orch.chat("hi", session_id="s")
    history = await orch.history("s")
    await orch.aclose()
    assert answer.content == "we are closed today" and answer.session_id == "s"
    assert [c.type for c in chunks] == ["text", "done"]
    assert chunks[0].text == "we are closed today"
    assert normal.content == "model answer"
    assert [m.content for m in history] == ["hi", "model answer"]  # early answers not stored


async def test_a_middleware_that_raises_fails_only_its_turn_and_is_reported():
    async def refuse_secrets(orchestrator, func, message, **kwargs):
        if "password" in message:
            raise PermissionError("messages with passwords are refused")

    exporter = CollectingExporter()
    middleware = MiddlewareCoordinator()
    middleware.add_middleware(refuse_secrets)
    orch = orchestrator(
        middleware, _analytics_coordinator=AnalyticsCoordinator(exporters=[exporter])
    )
    await orch.chat("first", session_id="s")
    with pytest.raises(PermissionError, match="passwords"):
        await orch.chat("my password is hunter2", session_id="s")
    with pytest.raises(PermissionError):
        [c async for c in orch.stream("password again", session_id="s")]
    assert (await orch.chat("second", session_id="s")).content == "model answer"
    history = await orch.history("s")
    await orch.aclose()
    assert [m.content for m in history if m.role == "user"] == ["first", "second"]
    errors = exporter.of_type("error")
    assert [e.data["stage"] for e in errors] == ["middleware", "middleware"]


async def test_a_middleware_answering_with_an_unknown_type_is_a_clear_error():
    async def odd(orchestrator, func, *args, **kwargs):
        return 42

    middleware = MiddlewareCoordinator()
    middleware.add_middleware(odd)
    orch = orchestrator(middleware)
    with pytest.raises(TypeError, match=r"None .* a str or a ChatResponse, not int"):
        await orch.chat("hi", session_id="s")
    await orch.aclose()


class SeenRequests(RequestMiddleware):
    def __init__(self, seen: list[Request]) -> None:
        self.seen = seen

    async def handle(self, orchestrator, request):
        self.seen.append(request)


async def test_request_middleware_share_one_request_view_per_call():
    seen: list[Request] = []
    middleware = MiddlewareCoordinator()
    middleware.add_middleware(SeenRequests(seen))
    middleware.add_middleware(SeenRequests(seen))
    orch = orchestrator(middleware)
    await orch.chat("hello", session_id="acme:s1")
    first, second = seen
    assert first is second
    assert (first.function, first.message, first.session_id, first.tenant_id) == (
        "chat",
        "hello",
        "acme:s1",
        "acme",
    )
    assert first.config["plan"] == "gold"
    await orch.aclose()


async def test_a_request_middleware_called_directly_builds_its_own_view():
    seen: list[Request] = []
    orch = orchestrator(MiddlewareCoordinator())
    orch.chat = MiddlewareCoordinator(orch, [SeenRequests(seen)]).apply_middleware(orch.chat)
    await orch.chat("again", session_id="s2", config={"tenant_id": "globex"})
    await orch.aclose()
    (request,) = seen
    assert (request.message, request.session_id, request.tenant_id) == ("again", "s2", "globex")


async def test_logging_middleware_logs_structured_fields_with_secrets_redacted(caplog):
    middleware = MiddlewareCoordinator()
    middleware.add_middleware(LoggingMiddleware())
    orch = orchestrator(middleware)
    with caplog.at_level(logging.INFO, logger="victor.requests"):
        await orch.chat(
            "use key sk-ant-REALSECRET1234567890 please",
            session_id="acme:s",
            config={"api_key": "tenant-key-123", "max_tokens": 100},
        )
    await orch.aclose()
    (record,) = [r for r in caplog.records if r.name == "victor.requests"]
    fields = record.victor
    assert fields["session_id"] == "acme:s" and fields["tenant_id"] == "acme"
    assert fields["function"] == "chat" and fields["message_chars"] == 42
    assert "REALSECRET" not in fields["message"] and REDACTED in fields["message"]
    assert fields["config"]["api_key"] == REDACTED and fields["config"]["max_tokens"] == 100
    assert "REALSECRET" not in caplog.text and "tenant-key-123" not in caplog.text
    assert record.getMessage() == "chat session=acme:s tenant=acme chars=42"
    assert record.pathname.endswith("log.py") and record.funcName == "handle"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("key sk-ant-api03-abcdefghijklmnop1234 here", "abcdefghijklmnop1234"),
        ("pk-ABCDEFGHIJKLMNOPQRST", "ABCDEFGHIJKLMNOPQRST"),
        ("aws AKIAABCDEFGHIJKLMNOP now", "ABCDEFGHIJKLMNOP"),
        ("ghp_abcdefghijklmnopqrstuvwxyz0123", "abcdefghijklmnopqrstuvwxyz0123"),
        ("github_pat_abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnopqrstuvwxyz"),
        ("xoxb-1234567890-abcdef", "1234567890-abcdef"),
        ("AIza" + "B" * 35, "B" * 35),
        ("jwt eyJhbGciOiJI.eyJzdWIiOiIx.SflKxwRJSMeKKF2QT4", "SflKxwRJSMeKKF2QT4"),
        ("Authorization: BEARER abc.def-ghi_jkl", "abc.def-ghi_jkl"),
        ("API_KEY=hunter2hunter2", "hunter2hunter2"),
        ("my Password: 'hunter22'", "hunter22"),
        ('{"Secret": "s3cr3t-value"}', "s3cr3t-value"),
        ("token=abcd1234", "abcd1234"),
    ],
)
def test_every_secret_shape_is_redacted_in_text_and_config(text, secret):
    assert secret not in redact_text(text) and REDACTED in redact_text(text)
    long = "x " * 400 + text  # past the length of the values remembered
    assert redact_mapping(
        {"note": text, "nested": {"note": text}, "headers": [text, 1], "long": long}
    ) == {
        "note": redact_text(text),
        "nested": {"note": redact_text(text)},
        "headers": [redact_text(text), 1],
        "long": "x " * 400 + redact_text(text),
    }


def test_text_without_secrets_is_left_as_it_is():
    plain = "What is the capital of France? Use max_tokens wisely."
    assert redact_text(plain) == plain
    assert redact_mapping({"max_tokens": 100, "API-Key": 7, "password": None}) == {
        "max_tokens": 100,
        "API-Key": REDACTED,
        "password": REDACTED,
    }


async def test_authentication_middleware_checks_the_credential_and_its_tenant():
    middleware = MiddlewareCoordinator()
    middleware.add_middleware(
        AuthenticationMiddleware(api_key_validator({"key-acme": "acme", "key-admin": None}))
    )
    orch = orchestrator(middleware)
    with pytest.raises(AuthenticationError, match="no credential: pass config=\\{'api_key'"):
        await orch.chat("hi", session_id="acme:s")
    with pytest.raises(AuthenticationError, match="invalid credential for tenant 'acme'"):
        await orch.chat("hi", session_id="acme:s", config={"api_key": "wrong"})
    with pytest.raises(AuthenticationError, match="not valid for tenant 'globex'"):
        await orch.chat("hi", session_id="globex:s", config={"api_key": "key-acme"})
    ok = await orch.chat("hi", session_id="acme:s", config={"api_key": "key-acme"})
    admin = await orch.chat("hi", session_id="globex:s", config={"api_key": "key-admin"})
    await orch.aclose()
    assert ok.content == admin.content == "model answer"


async def test_authentication_takes_an_async_validator():
    async def validator(credential, request):
        await asyncio.sleep(0)
        return credential == "let-me-in"

    auth = AuthenticationMiddleware(validator)
    orch = orchestrator(MiddlewareCoordinator())
    orch.chat = MiddlewareCoordinator(orch, [auth]).apply_middleware(orch.chat)
    with pytest.raises(AuthenticationError):
        await orch.chat("hi", session_id="s", config={"api_key": "nope"})
    assert (await orch.chat("hi", session_id="s", config={"api_key": "let-me-in"})).content
    await orch.aclose()


async def test_rate_limit_per_tenant_with_retry_after():
    now = [100.0]
    bucket = InMemoryTokenBucket(rate=0.5, burst=2, clock=lambda: now[0])
    middleware = MiddlewareCoordinator()
    middleware.add_middleware(RateLimitMiddleware(bucket=bucket))
    orch = orchestrator(middleware)
    await orch.chat("1", session_id="acme:a")
    await orch.chat("2", session_id="acme:b")
    with pytest.raises(RateLimitExceeded) as refused:
        await orch.chat("3", session_id="acme:c")
    assert refused.value.retry_after == pytest.approx(2.0)
    assert refused.value.key == "tenant:acme"
    await orch.chat("other tenant", session_id="globex:a")  # its own bucket
    now[0] += 2.0
    await orch.chat("after the wait", session_id="acme:a")
    await orch.aclose()


def test_in_memory_buckets_are_bounded():
    bucket = InMemoryTokenBucket(rate=1, burst=1, max_keys=100)

    async def fill():
        for i in range(1_000):
            await bucket.acquire(f"k{i}")

    asyncio.run(fill())
    assert len(bucket._buckets) == 100


def test_rate_limit_parameters_are_checked():
    with pytest.raises(ValueError, match="rate must be > 0"):
        RateLimitMiddleware(rate=0)
    with pytest.raises(ValueError, match="burst must be >= 1"):
        InMemoryTokenBucket(rate=1, burst=0.5)
    with pytest.raises(TypeError, match="rate must be a number, not 'fast'"):
        RateLimitMiddleware(rate="fast")
    with pytest.raises(TypeError, match="burst must be a number, not '10'"):
        RateLimitMiddleware(rate=1, burst="10")


def test_logging_and_authentication_parameters_are_checked():
    assert LoggingMiddleware(level="debug").level == logging.DEBUG
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        LoggingMiddleware(level="LOUD")
    with pytest.raises(TypeError, match="level must be a log level"):
        LoggingMiddleware(level=2.5)
    with pytest.raises(ValueError, match="max_message_chars must be an int >= 0, not -1"):
        LoggingMiddleware(max_message_chars=-1)
    with pytest.raises(TypeError, match=r"logger must be a logging\.Logger or its name"):
        LoggingMiddleware(logger=42)
    with pytest.raises(TypeError, match="validator must be callable"):
        AuthenticationMiddleware({"k": "acme"})


# -- Redis --------------------------------------------------------------------------


@pytest.fixture
async def redis_prefix(redis_url):
    import redis.asyncio as redis_asyncio

    prefix = f"victor-test:{uuid.uuid4().hex}:"
    yield prefix
    client = redis_asyncio.Redis.from_url(redis_url)
    keys = [k async for k in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.mark.redis
async def test_redis_buckets_are_shared_and_atomic(redis_url, redis_prefix):
    # Two buckets, two connection pools: as two processes would.
    first = RedisTokenBucket(redis_url, rate=0.01, burst=10, prefix=redis_prefix)
    second = RedisTokenBucket(redis_url, rate=0.01, burst=10, prefix=redis_prefix)
    waits = await asyncio.gather(
        *(b.acquire("tenant:acme") for b in [first, second] * 25)  # 50 at once
    )
    assert sum(w == 0 for w in waits) == 10
    assert min(w for w in waits if w) == pytest.approx(100.0, rel=0.05)  # 1 token at 0.01/s
    assert await first.acquire("tenant:other") == 0
    await first.aclose()
    await second.aclose()


@pytest.mark.redis
async def test_rate_limit_middleware_on_redis(redis_url, redis_prefix):
    limiter = RateLimitMiddleware(rate=1, burst=1, redis=redis_url, prefix=redis_prefix)
    middleware = MiddlewareCoordinator()
    middleware.add_middleware(limiter)
    orch = orchestrator(middleware)
    await orch.chat("one", session_id="acme:s")
    with pytest.raises(RateLimitExceeded) as refused:
        await orch.chat("two", session_id="acme:s")
    assert 0 < refused.value.retry_after <= 1.0
    await orch.aclose()  # closes the limiter's client too


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_redis(port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise RuntimeError("redis-server did not start")


def _stop(server: subprocess.Popen) -> None:
    server.terminate()
    server.wait(timeout=10)


@pytest.mark.redis
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
@pytest.mark.parametrize("fail_open", [True, False])
async def test_redis_going_away_mid_run_fails_open_or_closed_and_logs_it(fail_open, caplog):
    port = _free_port()
    server = _start_redis(port)
    bucket = RedisTokenBucket(
        f"redis://127.0.0.1:{port}/0",
        rate=100,
        burst=100,
        fail_open=fail_open,
        retry_interval=0.05,
    )
    try:
        assert await bucket.acquire("k") == 0
        _stop(server)
        with caplog.at_level(logging.WARNING, logger="victor.middleware.ratelimit"):
            for _ in range(5):
                if fail_open:
                    assert await bucket.acquire("k") == 0
                else:
                    with pytest.raises(RateLimiterUnavailable) as refused:
                        await bucket.acquire("k")
                    assert refused.value.retry_after == 0.05
            unreachable = [r for r in caplog.records if "unreachable" in r.getMessage()]
            assert len(unreachable) == 1  # once per outage, not per request
            assert ("fail open" if fail_open else "fail closed") in unreachable[0].getMessage()
            server = _start_redis(port)
            await asyncio.sleep(0.1)
            assert await bucket.acquire("k") == 0
            assert any("reachable again" in r.getMessage() for r in caplog.records)
    finally:
        await bucket.aclose()
        if server.poll() is None:
            _stop(server)
