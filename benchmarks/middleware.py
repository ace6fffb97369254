"""What middleware costs a chat turn, and how many checks a second the Redis rate
limiter makes from one process.

1. The three built-ins (``LoggingMiddleware``, ``AuthenticationMiddleware`` with
   ``api_key_validator``, ``RateLimitMiddleware`` in memory with a limit never reached),
   timed directly as the orchestrator runs them each turn: ``coordinator.run(...)`` with
   the turn's arguments, with the request logger in four states: at INFO into a
   ``QueueHandler`` whose ``QueueListener`` thread formats each record and writes it to a
   string buffer (logging's own way to keep formatting and writing off the event loop), at
   INFO into a handler that formats and writes on the event loop, at INFO into a
   ``NullHandler`` (the record is made, nothing written), and at the default level (INFO
   not enabled: no record). Then whole turns with and without them (``ScriptedProvider``,
   in-memory sessions, analytics off), for each logger state, after 200 warm-up turns,
   interleaved in blocks of 100 so that machine load hits both alike. The turn's config
   is the API key alone; once more with the 12 keys of ``examples/config_complete.yaml``
   besides (formatting handler). For reference, one plain ``logger.info`` a turn into the
   same formatting handler, and nothing else.
2. ``RedisTokenBucket.acquire`` against the local Redis beside its floor, a bare ``PING``
   and a bare ``EVALSHA`` of its script on the same client: one call after another, then
   32 concurrent callers (one connection pool), on 100 keys, median of 3 runs; its keys
   are deleted after.

    python benchmarks/middleware.py [--turns 5000] [--checks 20000] [--redis URL | --no-redis]
                                    [--json out]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import logging.handlers
import platform
import queue
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import yaml

from victor.agent.coordinators import MiddlewareCoordinator
from victor.agent.orchestrator import AgentOrchestrator
from victor.config.settings import Settings
from victor.middleware import (
    AuthenticationMiddleware,
    LoggingMiddleware,
    RateLimitMiddleware,
    RedisTokenBucket,
    api_key_validator,
)
from victor.providers import ScriptedProvider
from victor.sessions import InMemorySessionStore

COMPLETE_CONFIG = Path(__file__).parent.parent / "examples" / "config_complete.yaml"
LOGGING = ("queue_handler", "formatting_handler", "null_handler", "not_enabled")

_listener: logging.handlers.QueueListener | None = None


def formatting_handler() -> logging.Handler:
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s %(victor)s"))
    return handler


async def log_line(orchestrator: object, func: object, message: str, **kwargs: object) -> None:
    """The reference: one plain ``logger.info`` line a turn with two fields, nothing else."""
    session_id, tenant_id = kwargs.get("session_id"), kwargs.get("tenant_id")
    logging.getLogger("victor.requests").info(
        "chat session=%s tenant=%s chars=%d",
        session_id,
        tenant_id,
        len(message),
        extra={"victor": {"session_id": session_id, "tenant_id": tenant_id}},
    )


def built_ins(
    logging_to: str = "queue_handler", log_line_only: bool = False
) -> MiddlewareCoordinator:
    global _listener
    if _listener is not None:
        _listener.stop()
        _listener = None
    log = logging.getLogger("victor.requests")
    for old in list(log.handlers):
        log.removeHandler(old)
    if logging_to == "not_enabled":
        log.setLevel(logging.NOTSET)  # the root logger's WARNING applies
        log.propagate = True
    else:
        log.setLevel(logging.INFO)
        log.propagate = False
        handler: logging.Handler = logging.NullHandler()
        if logging_to == "formatting_handler":
            handler = formatting_handler()
        elif logging_to == "queue_handler":
            records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
            handler = logging.handlers.QueueHandler(records)
            _listener = logging.handlers.QueueListener(records, formatting_handler())
            _listener.start()
        log.addHandler(handler)
    coordinator = MiddlewareCoordinator()
    if log_line_only:
        coordinator.add_middleware(log_line)
        return coordinator
    coordinator.add_middleware(LoggingMiddleware())
    coordinator.add_middleware(AuthenticationMiddleware(api_key_validator({"k-1": "acme"})))
    coordinator.add_middleware(RateLimitMiddleware(rate=1e9, burst=1e9))
    return coordinator


def stats(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {
        "median_us": round(statistics.median(samples), 2),
        "p99_us": round(samples[int(len(samples) * 0.99) - 1], 2),
    }


def session_config(complete: bool) -> dict[str, object]:
    """The turn's config: the API key alone, or with the 12 keys of a complete session
    config (``examples/config_complete.yaml`` without its tenants and sessions)."""
    config: dict[str, object] = {"api_key": "k-1"}
    if complete:
        config.update(yaml.safe_load(COMPLETE_CONFIG.read_text()))
        del config["tenants"], config["sessions"]
    return config


async def chain_cost(
    turns: int, logging_to: str, log_line_only: bool = False, complete: bool = False
) -> dict[str, float]:
    coordinator = built_ins(logging_to, log_line_only)

    async def chat(message: str) -> None: ...

    kwargs = {"session_id": "acme:s1", "tenant_id": "acme", "config": session_config(complete)}
    for _ in range(500):
        await coordinator.run(chat, ("What is the weather in Paris?",), kwargs)
    samples = []
    for _ in range(turns):
        start = time.perf_counter()
        await coordinator.run(chat, ("What is the weather in Paris?",), kwargs)
        samples.append((time.perf_counter() - start) * 1e6)
    return stats(samples)


async def turn_cost(
    turns: int, logging_to: str, log_line_only: bool = False, complete: bool = False
) -> dict[str, dict[str, float]]:
    def make(middleware: MiddlewareCoordinator | None) -> AgentOrchestrator:
        return AgentOrchestrator(
            settings=Settings(enable_analytics=False),
            provider=ScriptedProvider(["It is sunny."], cycle=True),
            model="local",
            session_store=InMemorySessionStore(),
            _middleware_coordinator=middleware,
        )

    plain, wrapped = make(None), make(built_ins(logging_to, log_line_only))
    samples: dict[str, list[float]] = {"without": [], "with": []}
    config = session_config(complete)
    for block in range(-2, turns // 100):
        for name, orch in (("without", plain), ("with", wrapped)):
            for i in range(100):
                start = time.perf_counter()
                await orch.chat(
                    "What is the weather?", session_id=f"acme:{block}-{i}", config=config
                )
                if block >= 0:
                    samples[name].append((time.perf_counter() - start) * 1e6)
    await plain.aclose()
    await wrapped.aclose()
    out = {name: stats(values) for name, values in samples.items()}
    out["added"] = {"median_us": round(out["with"]["median_us"] - out["without"]["median_us"], 2)}
    return out


async def rate(call: Callable[[int], Awaitable[object]], checks: int, callers: int) -> float:
    """Calls a second: ``checks`` calls, one after another or by ``callers`` at once."""
    per = checks // callers

    async def caller(k: int) -> None:
        for i in range(per):
            await call(k * per + i)

    start = time.perf_counter()
    await asyncio.gather(*(caller(k) for k in range(callers)))
    return per * callers / (time.perf_counter() - start)


async def redis_throughput(url: str, checks: int, rounds: int = 3) -> dict[str, dict[str, int]]:
    """``RedisTokenBucket.acquire`` beside its floor on the same client: a bare ``PING``
    and a bare ``EVALSHA`` of the same script, each one after another and by 32 callers
    at once (one connection pool), the median of ``rounds`` runs."""
    from victor.middleware.ratelimit import TOKEN_BUCKET_LUA

    prefix = f"victor-bench:{uuid.uuid4().hex}:"
    bucket = RedisTokenBucket(url, rate=1e6, burst=1e6, prefix=prefix, fail_open=False)
    client = bucket.client
    sha = await client.script_load(TOKEN_BUCKET_LUA)
    calls: dict[str, Callable[[int], Awaitable[object]]] = {
        "ping": lambda i: client.ping(),
        "evalsha": lambda i: client.evalsha(sha, 1, f"{prefix}t{i % 100}", 1e6, 1e6, 1),
        "rate_limiter": lambda i: bucket.acquire(f"tenant{i % 100}"),
    }
    out: dict[str, dict[str, int]] = {}
    try:
        for name, call in calls.items():
            await rate(call, 500, 1)  # warm-up
            out[name] = {
                f"{label}_per_s": round(
                    statistics.median([await rate(call, checks, callers) for _ in range(rounds)])
                )
                for label, callers in (("sequential", 1), ("concurrent_32", 32))
            }
    finally:
        keys = [k async for k in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await bucket.aclose()
    return out


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    import redis

    report: dict[str, object] = {
        "python": platform.python_version(),
        "redis_py": redis.__version__,
        "middleware_chain": {name: await chain_cost(args.turns, name) for name in LOGGING},
        "turn": {name: await turn_cost(args.turns, name) for name in LOGGING},
        # The floor of logging a line a turn into the same handler, for comparison.
        "formatting_handler_complete_config": {
            "chain": await chain_cost(args.turns, "formatting_handler", complete=True),
            "turn": await turn_cost(args.turns, "formatting_handler", complete=True),
        },
        "log_line_only": {
            "chain": await chain_cost(args.turns, "formatting_handler", True),
            "turn": await turn_cost(args.turns, "formatting_handler", True),
        },
    }
    if not args.no_redis:
        report["redis_rate_limiter"] = await redis_throughput(args.redis, args.checks)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=5000)
    parser.add_argument("--checks", type=int, default=20000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--no-redis", action="store_true", help="skip the Redis rate limiter")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()
    report = asyncio.run(main_async(args))
    print(json.dumps(report, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)


if __name__ == "__main__":
    main()
