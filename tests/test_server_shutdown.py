"""Graceful shutdown: new requests get 503, turns in flight finish, analytics are flushed."""

from __future__ import annotations

import sqlite3
import threading
import time

import httpx

from server_kit import ServedApp, ServeProcess, orchestrator_for
from victor.providers import SimulatedProvider
from victor.server import server_state


def test_a_draining_app_refuses_new_requests_but_answers_probes():
    served = ServedApp(orchestrator_for(SimulatedProvider(seed=1))).start()
    try:
        http = httpx.Client(base_url=served.url)
        assert http.post("/v1/chat", json={"message": "hi"}).status_code == 200
        server_state(served.app).draining = True  # what a SIGTERM does first
        refused = http.post("/v1/chat", json={"message": "hi"})
        assert refused.status_code == 503
        assert refused.json()["error"]["type"] == "service_unavailable"
        assert http.get("/readyz").status_code == 503
        assert http.get("/healthz").status_code == 200
    finally:
        served.stop()


def test_sigterm_lets_the_turn_in_flight_finish_and_flushes_its_analytics(tmp_path):
    data = tmp_path / "data"
    env = {
        "VICTOR_PROVIDER": "simulated",
        "VICTOR_DATA_DIR": str(data),
    }
    config = tmp_path / "victor.yaml"
    config.write_text(
        "orchestrator:\n  provider: simulated\n"
        "  simulated: {latency_ms: 1500, latency_sigma: 0, tool_call_rate: 0}\n"
    )
    process = ServeProcess(["--config", str(config)], env).start()
    answers: list[httpx.Response] = []

    def ask() -> None:
        answers.append(
            httpx.post(
                f"{process.url}/v1/chat",
                json={"message": "slow one", "session_id": "inflight"},
                timeout=30,
            )
        )

    worker = threading.Thread(target=ask)
    worker.start()
    time.sleep(0.7)  # the turn is waiting on the model
    assert process.process is not None
    process.process.terminate()
    worker.join(timeout=30)
    process.stop()
    # uvicorn re-raises the SIGTERM once it has shut down gracefully.
    assert process.process.returncode in (0, -15)
    assert answers and answers[0].status_code == 200
    assert answers[0].json()["session_id"] == "inflight"
    with sqlite3.connect(data / "analytics.db") as db:
        kinds = {
            row[0]
            for row in db.execute(
                "SELECT type FROM victor_analytics_events WHERE session_id = 'inflight'"
            )
        }
    assert "chat_complete" in kinds
