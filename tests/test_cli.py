from typer.testing import CliRunner

from victor import __version__
from victor.cli.main import app

runner = CliRunner()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.stdout


def _without_timings(output: str) -> list[str]:
    """The demo's lines but those of measured times (the latency metrics' rows, the
    elapsed seconds), with spaces and table borders collapsed (column widths follow the
    latency figures)."""
    kept, timing = [], False
    for line in output.splitlines():
        if "latency" in line:
            timing = "│" in line
        elif line.startswith(("├", "└")):
            timing = False
        if not timing and " s. " not in line and "latency" not in line:
            kept.append(" ".join(line.replace("━", "").replace("─", "").split()))
    return kept


def test_demo_runs_offline_through_an_experiment_and_reproduces_with_its_seed(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("VICTOR_DATA_DIR", str(tmp_path))
    args = ["demo", "--sessions", "60", "--turns", "2", "--latency-ms", "0", "--seed", "3"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "Experiment 'demo-model' (control: control)" in first.output
    assert "feedback score (primary)" in first.output and "p holm" in first.output
    assert "treatment: " in first.output and "SRM ok" in first.output
    assert "P(beat): Bayesian probability" in first.output  # every column explained
    assert (tmp_path / "demo" / "analytics.db").exists()
    again = runner.invoke(app, args)
    assert _without_timings(again.output) == _without_timings(first.output)
    other = runner.invoke(app, [*args[:-1], "4"])
    assert _without_timings(other.output) != _without_timings(first.output)


def test_chat_without_a_provider_explains_what_to_set():
    result = runner.invoke(app, ["chat"], input="")
    assert result.exit_code == 2
    assert "OPENAI_API_KEY" in result.output
