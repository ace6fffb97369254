"""Configuration mistakes are one line naming the variable or file, the bad value and what
is accepted: a typed ConfigError from the library, that line and exit code 2 from the CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from victor import Settings
from victor.cli.main import app
from victor.errors import ConfigError
from victor.pricing import load_price_table, set_default_price_table
from wire_server import Reply, WireServer

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(autouse=True)
def _fresh_price_table():
    # The process-wide table reads VICTOR_PRICES_FILE once; each test starts afresh.
    set_default_price_table(None)
    yield
    set_default_price_table(None)


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text, text
    return text


def unreadable(path: Path) -> Path:
    """A file that cannot be read, even by root (who reads files whatever their mode)."""
    path.write_text("VICTOR_MAX_TOOLS=5\n")
    path.chmod(0)
    if os.access(path, os.R_OK):
        path.unlink()
        path.symlink_to("/proc/self/mem")  # a regular file whose read fails with EIO
    return path


# -- the library ------------------------------------------------------------------------


def test_unknown_session_store_names_variable_value_and_choices(monkeypatch):
    monkeypatch.setenv("VICTOR_SESSION_STORE", "nonsense")
    with pytest.raises(ConfigError) as caught:
        Settings()
    text = one_line(caught.value)
    assert "VICTOR_SESSION_STORE='nonsense'" in text
    assert "sqlite, memory or a postgresql:// DSN" in text


def test_value_that_is_not_a_number_says_what_is_accepted(monkeypatch):
    monkeypatch.setenv("VICTOR_MAX_TOOL_ITERATIONS", "lots")
    with pytest.raises(ConfigError) as caught:
        Settings()
    assert one_line(caught.value) == (
        "VICTOR_MAX_TOOL_ITERATIONS='lots' is invalid (accepted: an integer >= 1)"
    )


def test_every_bad_value_is_named_on_the_same_line(monkeypatch):
    monkeypatch.setenv("VICTOR_TOOL_TIMEOUT", "-1")
    monkeypatch.setenv("VICTOR_SESSION_DURABILITY", "later")
    monkeypatch.setenv("VICTOR_TEMPERATURE", "3")
    with pytest.raises(ConfigError) as caught:
        Settings()
    text = one_line(caught.value)
    assert "VICTOR_TOOL_TIMEOUT='-1' is invalid (accepted: a number > 0)" in text
    assert "VICTOR_SESSION_DURABILITY='later' is invalid (accepted: 'sync' or 'async')" in text
    assert "VICTOR_TEMPERATURE='3' is invalid (accepted: a number >= 0.0 and <= 2.0)" in text


def test_bad_value_in_dotenv_names_the_file_and_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("# tuning\nVICTOR_DEFAULT_MODEL=m\nvictor_max_tools = abc\n")
    with pytest.raises(ConfigError) as caught:
        Settings()
    assert one_line(caught.value) == (
        f"{tmp_path / '.env'}:3: VICTOR_MAX_TOOLS='abc' is invalid (accepted: an integer >= 1)"
    )


def test_environment_wins_over_dotenv_and_is_the_one_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("VICTOR_MAX_TOOLS=7\n")
    monkeypatch.setenv("VICTOR_MAX_TOOLS", "zero")
    with pytest.raises(ConfigError, match=r"^VICTOR_MAX_TOOLS='zero' is invalid"):
        Settings()


def test_dotenv_that_is_not_utf8_names_file_and_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_bytes(b"VICTOR_MAX_TOOLS=5\nVICTOR_DEFAULT_MODEL=caf\xe9\n")
    with pytest.raises(ConfigError) as caught:
        Settings()
    text = one_line(caught.value)
    assert text.startswith(f"{tmp_path / '.env'}:2: not UTF-8 text")


def test_unreadable_dotenv_names_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    unreadable(tmp_path / ".env")
    with pytest.raises(ConfigError) as caught:
        Settings()
    assert one_line(caught.value).startswith(f"{tmp_path / '.env'}: cannot read it (")


def test_bad_keyword_argument_is_named_as_such():
    with pytest.raises(ConfigError) as caught:
        Settings(max_tools=0)
    assert one_line(caught.value) == "Settings(max_tools=0) is invalid (accepted: an integer >= 1)"


def test_password_in_a_mistyped_dsn_is_not_echoed(monkeypatch):
    monkeypatch.setenv("VICTOR_SESSION_STORE", "postgress://app:s3cret@db/app")
    with pytest.raises(ConfigError) as caught:
        Settings()
    text = one_line(caught.value)
    assert "s3cret" not in text and "postgress://app:***@db/app" in text


def test_data_dir_that_cannot_be_created_or_written_is_named(tmp_path):
    with pytest.raises(ConfigError) as caught:
        Settings(data_dir=Path("/proc/nope")).ensure_data_dir()
    text = one_line(caught.value)
    assert text.startswith("data dir /proc/nope (VICTOR_DATA_DIR): cannot create it")
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(ConfigError, match="cannot create it"):
        Settings(data_dir=a_file).ensure_data_dir()
    assert Settings(data_dir=tmp_path / "new" / "dir").ensure_data_dir().is_dir()


def test_missing_prices_file_names_the_variable_and_path(tmp_path, monkeypatch):
    missing = tmp_path / "prices.yaml"
    monkeypatch.setenv("VICTOR_PRICES_FILE", str(missing))
    with pytest.raises(ConfigError) as caught:
        load_price_table()
    assert one_line(caught.value) == (
        f"VICTOR_PRICES_FILE={missing}: cannot read it (No such file or directory)"
    )


# -- the command line -------------------------------------------------------------------

runner = CliRunner()


def run_chat(server: WireServer, *flags: str, input: str = "hello\n/exit\n", env=None):
    return runner.invoke(
        app, [*flags, "chat", "--base-url", server.openai_base_url], input=input, env=env
    )


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("VICTOR_SESSION_STORE", "nonsense", "VICTOR_SESSION_STORE='nonsense'"),
        ("VICTOR_MAX_TOOL_ITERATIONS", "lots", "an integer >= 1"),
        ("VICTOR_DATA_DIR", "/proc/nope", "data dir /proc/nope (VICTOR_DATA_DIR)"),
        ("VICTOR_PRICES_FILE", "/nowhere/prices.yaml", "VICTOR_PRICES_FILE=/nowhere/prices.yaml"),
        ("VICTOR_LOG_LEVEL", "chatty", "VICTOR_LOG_LEVEL='chatty'"),
    ],
)
def test_chat_refuses_bad_configuration_in_one_line_before_any_model_call(
    server: WireServer, monkeypatch, variable, value, expected
):
    server.enqueue(Reply(text="paid for nothing"))
    monkeypatch.setenv(variable, value)
    result = run_chat(server)
    assert_one_line_error(result, expected)
    assert server.requests == []


def test_chat_refuses_a_dotenv_that_is_not_utf8(server: WireServer, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_bytes(b"VICTOR_DEFAULT_MODEL=caf\xe9\n")
    assert_one_line_error(run_chat(server), f"{tmp_path / '.env'}:1: not UTF-8 text")


def test_chat_refuses_an_unreadable_dotenv(server: WireServer, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    unreadable(tmp_path / ".env")
    assert_one_line_error(run_chat(server), f"{tmp_path / '.env'}: cannot read it")


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--provider", "nonsense"], "'nonsense' is not one of 'openai', 'anthropic'"),
        (["--base-url", "not-a-url"], "'not-a-url' is not an http(s) URL"),
        (["--base-url", "localhost:11434/v1"], "is not an http(s) URL"),
    ],
)
def test_chat_validates_its_flags_at_start(flags, expected):
    result = runner.invoke(app, ["chat", *flags], input="hello\n")
    assert_one_line_error(result, "victor chat: Invalid value for '--", expected)


def test_a_command_line_mistake_is_one_line_too():
    assert_one_line_error(runner.invoke(app, ["chat", "--frobnicate"]), "--frobnicate")
    assert_one_line_error(runner.invoke(app, ["demo", "--sessions", "0"]), "--sessions")


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_debug_shows_the_traceback(server: WireServer, monkeypatch, how):
    monkeypatch.setenv("VICTOR_SESSION_STORE", "nonsense")
    if how == "flag":
        result = run_chat(server, "--debug")
    else:
        result = run_chat(server, env={"VICTOR_DEBUG": "1"})
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError)  # raised, so Python prints it all


def test_chat_shows_the_session_and_continues_it(server: WireServer):
    server.enqueue(Reply(text="Hi there"), Reply(text="You said hello"))
    first = run_chat(server)
    assert first.exit_code == 0, first.output
    assert "Hi there" in first.stdout
    hint = next(line for line in first.stdout.splitlines() if "--session" in line)
    session = hint.split("--session", 1)[1].split()[0].strip("`'\")")
    assert session
    second = runner.invoke(
        app,
        ["chat", "--base-url", server.openai_base_url, "--session", session],
        input="what did I say?\n/quit\n",
    )
    assert second.exit_code == 0, second.output
    assert f"session {session}" in second.stdout
    sent = [m["content"] for m in server.requests[-1].body["messages"]]
    assert sent[-3:] == ["hello", "Hi there", "what did I say?"]


def test_chat_commands_are_not_sent_to_the_model(server: WireServer):
    result = run_chat(server, input="/help\n/nonsense\n/exit\n")
    assert result.exit_code == 0, result.output
    assert server.requests == []
    assert "/help" in result.stdout and "/exit" in result.stdout and "/quit" in result.stdout
    assert "unknown command /nonsense" in result.output


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_chat_names_the_url_it_cannot_reach_and_keeps_retries_out_of_the_conversation(
    tmp_path,
):
    url = f"http://127.0.0.1:{free_port()}/v1"
    env = {
        **os.environ,
        "PYTHONPATH": str(SRC),
        "VICTOR_MAX_RETRIES": "1",
        "VICTOR_DATA_DIR": str(tmp_path / "data"),
        "COLUMNS": "200",
    }
    done = subprocess.run(
        [sys.executable, "-m", "victor.cli.main", "chat", "--base-url", url],
        input="hello\n/exit\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert f"cannot reach {url}: connection refused" in done.stderr
    assert "retry 1/1" in done.stderr  # a short status line, on stderr
    assert "call failed" not in done.stderr + done.stdout  # not the providers' log record
    assert "cannot reach" not in done.stdout and "retry" not in done.stdout
