from typer.testing import CliRunner

from victor import __version__
from victor.cli.main import app

runner = CliRunner()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.stdout


def test_demo_runs_offline_through_the_whole_loop():
    result = runner.invoke(app, ["demo", "--sessions", "6", "--turns", "2", "--latency-ms", "0"])
    assert result.exit_code == 0, result.output
    assert "Per variant" in result.output
    assert "tool_call" in result.output and "chat_complete" in result.output


def test_chat_without_a_provider_explains_what_to_set():
    result = runner.invoke(app, ["chat"], input="")
    assert result.exit_code == 2
    assert "OPENAI_API_KEY" in result.output
