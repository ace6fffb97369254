from typer.testing import CliRunner

from victor import __version__
from victor.cli.main import app

runner = CliRunner()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.stdout


def test_demo_runs_offline_through_an_experiment_and_reproduces_with_its_seed(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("VICTOR_DATA_DIR", str(tmp_path))
    args = ["demo", "--sessions", "60", "--turns", "2", "--latency-ms", "400", "--seed", "3"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "Experiment 'demo-model' (control: control)" in first.output
    assert "feedback score (primary)" in first.output and "p holm" in first.output
    assert "treatment: " in first.output and "SRM ok" in first.output
    assert "P(beat): Bayesian probability" in first.output  # every column explained
    assert (tmp_path / "demo" / "analytics.db").exists()
    # Latency is the simulated model's (virtual time, no real wait): the treatment's is
    # 1.4 times the control's, and every line of the output comes back the same.
    assert "latency" in first.output and "s of simulated model time" in first.output
    again = runner.invoke(app, args)
    assert again.output == first.output
    other = runner.invoke(app, [*args[:-1], "4"])
    assert other.output != first.output


def test_chat_without_a_provider_explains_what_to_set():
    result = runner.invoke(app, ["chat"], input="")
    assert result.exit_code == 2
    assert "OPENAI_API_KEY" in result.output
