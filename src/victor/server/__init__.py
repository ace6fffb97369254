"""``victor serve``: an orchestrator behind an HTTP API (``[server]`` extra).

``create_app(orchestrator, key_store=...)`` gives the ASGI app; ``victor serve`` builds
the orchestrator from a YAML file or the environment and runs it with uvicorn.
"""

from __future__ import annotations

from victor.server.app import create_app, server_state
from victor.server.errors import APIError
from victor.server.keys import KeyStore, PostgresKeyStore, SQLiteKeyStore, key_store_from_url

__all__ = [
    "APIError",
    "KeyStore",
    "PostgresKeyStore",
    "SQLiteKeyStore",
    "create_app",
    "key_store_from_url",
    "server_state",
]
