"""Recipe 5: custom middleware -- logging, authentication and rate limiting around chat.

Runs offline (a scripted model stands in for a real one, history in SQLite):

    python examples/recipe_5_middleware.py

Middleware is ``async def mw(orchestrator, func, *args, **kwargs)``: it returns None to let
the call go on, a value to answer in its place, or raises to stop it. Handed to the
orchestrator (``_middleware_coordinator=``) it runs around ``chat`` and ``stream`` alike
and sees the session id, the tenant and the session's config. Rate limits live in this
process; set ``VICTOR_REDIS_URL`` (``redis://127.0.0.1:6379/0``) to share them between
processes through Redis.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import tempfile
from pathlib import Path

from victor.agent.coordinators import MiddlewareCoordinator
from victor.agent.coordinators.middleware_coordinator import (
    AuthenticationMiddleware,
    LoggingMiddleware,
    RateLimitMiddleware,
)
from victor.agent.orchestrator import AgentOrchestrator
from victor.config.settings import Settings
from victor.errors import AuthenticationError, RateLimitExceeded
from victor.middleware import api_key_validator
from victor.providers import ScriptedProvider

API_KEYS = {"acme-secret-key": "acme", "globex-secret-key": "globex"}


async def block_passwords(orchestrator, func, message, *args, **kwargs):
    """A custom middleware: answer in the model's place when a message holds a password."""
    if "password" in message.lower():
        return "Please do not send passwords here."
    return None


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s", stream=sys.stdout)
    middleware = MiddlewareCoordinator()
    middleware.add_middleware(LoggingMiddleware())
    middleware.add_middleware(AuthenticationMiddleware(api_key_validator(API_KEYS)))
    middleware.add_middleware(
        RateLimitMiddleware(rate=0.5, burst=2, redis=os.environ.get("VICTOR_REDIS_URL") or None)
    )
    middleware.add_middleware(block_passwords)

    with tempfile.TemporaryDirectory() as tmp:
        async with AgentOrchestrator(
            settings=Settings(data_dir=Path(tmp)),
            provider=ScriptedProvider(["Hello from the model."], cycle=True),
            model="local-model",
            _middleware_coordinator=middleware,
        ) as orchestrator:
            acme = {"api_key": "acme-secret-key"}
            response = await orchestrator.chat("Hi!", session_id="acme:s1", config=acme)
            print("answer:", response.content)
            response = await orchestrator.chat(
                "my password is hunter2", session_id="acme:s1", config=acme
            )
            print("answer:", response.content)
            try:
                await orchestrator.chat("Hi!", session_id="acme:s2", config=acme)
            except RateLimitExceeded as exc:
                print(f"refused: {exc} (retry after {exc.retry_after:.1f} s)")
            try:
                await orchestrator.chat("Hi!", session_id="globex:s1", config=acme)
            except AuthenticationError as exc:
                print("refused:", exc)
            chunks = [
                chunk
                async for chunk in orchestrator.stream(
                    "Stream to me", session_id="globex:s1", config={"api_key": "globex-secret-key"}
                )
            ]
            print("streamed:", chunks[-1].response.content)

    # The recipe's own way, wrapping a method, works too.
    with tempfile.TemporaryDirectory() as tmp:
        orchestrator = AgentOrchestrator(
            settings=Settings(data_dir=Path(tmp)),
            provider=ScriptedProvider(["wrapped answer"], cycle=True),
            model="local-model",
        )
        wrapper = MiddlewareCoordinator(orchestrator)
        wrapper.add_middleware(block_passwords)
        orchestrator.chat = wrapper.apply_middleware(orchestrator.chat)
        print("wrapped:", await orchestrator.chat("password: x"))
        print("wrapped:", (await orchestrator.chat("hello")).content)
        await orchestrator.aclose()


if __name__ == "__main__":
    asyncio.run(main())
