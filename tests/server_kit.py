"""Victor's HTTP server run for real: uvicorn on a free loopback port, in a thread (an app
of the test's making) or as a ``victor serve`` process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from victor.agent.orchestrator import AgentOrchestrator
from victor.config.settings import Settings
from victor.server import create_app
from victor.server.run import DrainingServer

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def orchestrator_for(provider: Any, tools: list[Any] | None = None, **kwargs: Any):
    return AgentOrchestrator(
        settings=Settings(session_store="memory"),
        provider=provider,
        model=kwargs.pop("model", "gpt-4o-mini"),
        tools=tools,
        **kwargs,
    )


class ServedApp:
    """``create_app(orchestrator, **options)`` served by uvicorn in a daemon thread."""

    def __init__(self, orchestrator: AgentOrchestrator, **options: Any) -> None:
        self.app = create_app(orchestrator, **options)
        self.orchestrator = orchestrator
        self.port = 0
        self._server: DrainingServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def start(self) -> ServedApp:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_config=None, log_level="critical", access_log=False, ws="none"
        )
        self._server = DrainingServer(config, self.app)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)

    def __enter__(self) -> ServedApp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ServeProcess:
    """``victor serve`` in a subprocess; ``stop()`` sends SIGTERM and waits."""

    def __init__(self, args: list[str], env: dict[str, str], port: int | None = None) -> None:
        self.port = port or free_port()
        self.args = args
        self.env = env
        self.process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ServeProcess:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "victor.cli.main",
                "serve",
                "--port",
                str(self.port),
                *self.args,
            ],
            env={**os.environ, "PYTHONPATH": str(ROOT / "src"), **self.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"victor serve exited: {self.process.stderr.read()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("victor serve did not become ready")

    def stop(self) -> str:
        """Stop the process; its stderr."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.terminate()
        try:
            _, err = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        return err

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
