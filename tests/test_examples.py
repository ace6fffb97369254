"""Every example in examples/ runs, as a user would run it, and the README shows each one
exactly as it is on disk."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from wire_server import Reply, WireServer, WireToolCall

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
README = ROOT / "README.md"
NEEDS_POSTGRES = {"recipe_3_postgres_export.py"}
BLOCK = re.compile(r"```(python|yaml)\n(.*?)```", re.DOTALL)
# The line before a block names its file: "... `examples/x.py`:" or "`examples/x.py` (...):"
NAMED = re.compile(r"`(examples/[\w/.]+\.(?:py|yaml))`(?: \([^)]*\))?:\s*$", re.MULTILINE)


def run(example: str, tmp_path: Path, **env: str) -> str:
    """Run ``examples/<example>`` in a fresh process and return its stdout."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / example)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT / "src"),
            "VICTOR_DATA_DIR": str(tmp_path / "data"),
            **env,
        },
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_readme_shows_every_example_as_it_is_on_disk():
    readme = README.read_text()
    shown = {}
    for match in BLOCK.finditer(readme):
        names = NAMED.findall(readme[: match.start()])
        assert names, f"README block at offset {match.start()} does not say which file it is"
        shown[names[-1]] = match.group(2)
    for name, code in shown.items():
        assert (ROOT / name).read_text() == code, f"README's copy of {name} is out of date"
    on_disk = {f"examples/{p.name}" for p in EXAMPLES.glob("*.py")}
    assert on_disk - {f"examples/{n}" for n in NEEDS_POSTGRES} <= set(shown)
    assert "examples/recipe_3_postgres_export.py" in readme


def test_every_example_has_a_test():
    tested = {"quick_start.py"} | NEEDS_POSTGRES | set(OFFLINE)
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


OFFLINE = {
    "testing_without_a_model.py": [
        "scripted: It is 18 C in Paris.",
        "function: echo: Weather in Paris?",
        "simulated: ",
        "tool result seen: 18 C and sunny in Paris",
    ],
    "coordinators.py": [
        "acme:alice (claude-sonnet-4-5): 'You review code carefully.\\n\\n"
        "Follow the coding standards of acme.'",
        "globex:bob (claude-haiku-4-5): 'You review code tersely.\\n\\n"
        "Follow the coding standards of globex.'",
    ],
    "tool_selection.py": ["13 tools; offered: search_docs, get_weather_forecast"],
    "serve_openai_client.py": [
        "It is 18 C in Paris. True",
        "tools run: ['get_weather']",
        "You asked about the weather in Paris.",
        "history sent to the model: 5 messages",
    ],
    "mcp_tools.py": ["Rain in Oslo tomorrow, 9 C -> Take an umbrella."],
    "analytics_export.py": ["'chat_complete': 2", "'acme': 4, 'globex': 4"],
    "recipe_7_dashboard.py": [
        "acme: 7 tokens, $",
        "['chat_complete', 'llm_request', 'session_start', 'token_usage']",
    ],
    "recipe_1_file_config.py": [
        "session-1: model=claude-sonnet-4-5",
        "'max_tokens': 512",
        "acme:session-1: model=claude-opus-4-5",
        "-> system prompt: You are Acme's support assistant.",
        "override: model=m-turn",
        "after an edit: 0.9",
        "after a bad edit: 0.9",
        "bad.yaml:2:14: 'temperature': Input should be a valid number (got 'hot')",
    ],
    "recipe_2_project_prompts.py": [
        "Coding standards: type hints everywhere; ruff-clean.\n\nNever reveal customer "
        "data.\n\nWhen writing tests, use pytest",
        "You work for acme. Model: claude-sonnet-4-5.",
        "Coding standards: type hints; docstrings on public functions.",
        "within 120 characters:\nYou are a coding assistant.\n\nCoding standards: type "
        "hints; docstrings on public functions.\n\nNever reveal customer data.\n",
    ],
    "recipe_6_multi_tenant.py": [
        "acme:support-1: Hello from acme's agent. [model claude-opus-4-5]",
        "globex:support-1: Hello from globex's agent. [model claude-sonnet-4-5]",
        "refused: session 'acme:support-1' belongs to tenant 'acme', not 'globex'",
        "globex's sessions: ['globex:support-1']",
        "open orchestrators: ['globex', 'initech']",
    ],
    "recipe_4_context_compaction.py": [
        "== keep-recent: 5 messages kept after 5 turns",
        "Summary of the earlier conversation:",
        "last turn: 2 model call(s)",  # the summary is counted in the turn
        "== custom: 6 messages kept",
    ],
    "recipe_9_ab_testing.py": [
        "user-0: experiment=answer-model variant=control",
        "sessions per variant: {'control': 200, 'haiku': 200}; SRM ok",
        "good answers: control 70%, haiku 88%; haiku +18.0% (95% CI +10.1%..+25.9%",
    ],
    "recipe_5_middleware.py": [
        "answer: Hello from the model.",
        "answer: Please do not send passwords here.",
        "refused: rate limit exceeded for tenant:acme; retry in ",
        "refused: this API key is not valid for tenant 'globex'",
        "streamed: Hello from the model.",
        "wrapped: Please do not send passwords here.\nwrapped: wrapped answer",
    ],
}


@pytest.mark.parametrize("example", sorted(OFFLINE))
def test_offline_example_runs(example: str, tmp_path: Path):
    if example == "mcp_tools.py":
        pytest.importorskip("mcp")
    output = run(example, tmp_path, VICTOR_REDIS_URL="")
    for expected in OFFLINE[example]:
        assert expected in output
    assert "secret-key" not in output  # recipe 5 logs requests with their keys redacted
    if example == "tool_selection.py":
        offered = output.split("offered: ", 1)[1].split(", ")
        assert len(offered) == 8  # max_tools


def test_quick_start_against_an_openai_compatible_server(server: WireServer, tmp_path: Path):
    server.enqueue(
        Reply(tool_calls=[WireToolCall("get_weather", {"city": "Paris"})]),
        Reply(text="It is 18 C and sunny in Paris.", input_tokens=60, output_tokens=9),
        Reply(text="Oslo: 18 C and sunny too.", chunk_size=4),
    )
    output = run(
        "quick_start.py",
        tmp_path,
        OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=server.openai_base_url,
    )
    first, second = output.splitlines()
    assert first.startswith("It is 18 C and sunny in Paris. ")
    assert second == "Oslo: 18 C and sunny too."
    tool_turn = server.requests[1].body
    assert tool_turn["model"] == "gpt-4o-mini"
    assert "18 C and sunny in Paris" in str(tool_turn["messages"])
    assert server.requests[2].body["stream"] is True


def test_recipe_3_exports_to_postgresql(postgres_dsn: str, tmp_path: Path):
    asyncpg = pytest.importorskip("asyncpg")
    schema = f"victor_example_{uuid.uuid4().hex[:12]}"

    async def drop_schema() -> None:
        conn = await asyncpg.connect(postgres_dsn, timeout=10)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()

    try:
        output = run(
            "recipe_3_postgres_export.py",
            tmp_path,
            VICTOR_PG_DSN=postgres_dsn,
            VICTOR_PG_SCHEMA=schema,
        )
    finally:
        asyncio.run(drop_schema())
    assert "acme:session-0: 'It is sunny and 21 C in Paris.' / 'Hello! How can I help?'" in output
    rows = [line.split() for line in output.splitlines() if line.startswith(("acme", "globex"))]
    assert {row[0]: row[1] for row in rows if len(row) == 5} == {"acme": "6", "globex": "6"}
