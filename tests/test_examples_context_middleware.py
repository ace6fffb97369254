"""The runnable examples of recipes 4 and 5 run offline and print what they promise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_example(name: str, tmp_path: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "VICTOR_DATA_DIR": str(tmp_path)}
    env.pop("VICTOR_REDIS_URL", None)
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_recipe_4_compacts_with_three_strategies(tmp_path):
    out = run_example("recipe_4_context_compaction.py", tmp_path)
    assert "== keep-recent: 5 messages kept after 5 turns" in out
    assert "Summary of the earlier conversation:" in out
    assert "last turn: 2 model call(s)" in out  # the summary is counted
    assert "== custom: 6 messages kept" in out


def test_recipe_5_logs_authenticates_and_limits(tmp_path):
    out = run_example("recipe_5_middleware.py", tmp_path)
    assert "answer: Hello from the model." in out
    assert "answer: Please do not send passwords here." in out
    assert "refused: rate limit exceeded for tenant:acme; retry in " in out
    assert "refused: this API key is not valid for tenant 'globex'" in out
    assert "streamed: Hello from the model." in out
    assert "wrapped: Please do not send passwords here.\nwrapped: wrapped answer" in out
    assert "secret-key" not in out
