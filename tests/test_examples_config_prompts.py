"""The runnable examples of recipes 1, 2 and 6 run offline and do what they say."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_example(name: str, tmp_path: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "VICTOR_DATA_DIR": str(tmp_path)}
    env.pop("VICTOR_MAX_TOKENS", None)
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "recipe_1_file_config.py",
            [
                "session-1: model=claude-sonnet-4-5",
                "'max_tokens': 512",
                "acme:session-1: model=claude-opus-4-5",
                "-> system prompt: You are Acme's support assistant.",
                "override: model=m-turn",
                "after an edit: 0.9",
                "after a bad edit: 0.9",
                "bad.yaml:2:14: 'temperature': Input should be a valid number (got 'hot')",
            ],
        ),
        (
            "recipe_2_project_prompts.py",
            [
                "Coding standards: type hints everywhere; ruff-clean.\n\nNever reveal customer "
                "data.\n\nWhen writing tests, use pytest",
                "You work for acme. Model: claude-sonnet-4-5.",
                "Coding standards: type hints; docstrings on public functions.",
                "BrokenContributor(priority=10) failed",
                "over its budget of 120 characters for tenant 'acme'",
            ],
        ),
        (
            "recipe_6_multi_tenant.py",
            [
                "acme:support-1: Hello from acme's agent. [model claude-opus-4-5]",
                "globex:support-1: Hello from globex's agent. [model claude-sonnet-4-5]",
                "refused: session 'acme:support-1' belongs to tenant 'acme', not 'globex'",
                "globex's sessions: ['globex:support-1']",
                "open orchestrators: ['globex', 'initech']",
            ],
        ),
    ],
)
def test_example_runs_offline(name, expected, tmp_path):
    output = run_example(name, tmp_path)
    for line in expected:
        assert line in output
    if name.startswith("recipe_2"):
        assert output.count("BrokenContributor(priority=10) failed") == 1
        assert "Traceback" not in output
