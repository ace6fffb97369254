"""``victor experiments``: an experiment's report from the analytics store."""

from __future__ import annotations

import asyncio
import json
import math
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from victor.cli.analytics import Db, _default_db, _fail

if TYPE_CHECKING:
    from rich.console import Console

    from victor.experiments import ExperimentReport


class Correction(StrEnum):
    holm = "holm"
    bh = "bh"


app = typer.Typer(help="A/B experiments: their reports.", add_completion=False)

COLUMNS = (
    ("metric", "what is measured per unit: session, user or tenant (p95 latency: over turns)"),
    ("variant", "the arm of the experiment; the control is what the others are compared with"),
    ("n", "units with data for the metric"),
    ("value", "the variant's mean, rate (share of 1s), ratio or p95, with its 95% CI"),
    ("lift", "relative change against the control, with its 95% CI"),
    ("p", "two-sided p-value against the control"),
    (
        "p holm",
        "p adjusted across the variant's metrics by Holm (p bh: Benjamini-Hochberg): "
        "significant when < alpha",
    ),
    ("P(beat)", "Bayesian probability that the variant's value is the higher one"),
)


def _num(value: float, kind: str) -> str:
    if not math.isfinite(value):
        return "-"
    if kind == "proportion":
        return f"{value:.1%}"
    return f"{value:.3g}"


def _pct(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value * 100:+.1f}%"


def print_report(console: Console, result: ExperimentReport, *, explain: bool = True) -> None:
    """The report as tables: every metric per variant, the split, the verdicts."""
    from rich.table import Table

    table = Table(title=f"Experiment {result.experiment!r} (control: {result.control})")
    for name, _ in COLUMNS:
        name = f"p {result.correction}" if name == "p holm" else name
        table.add_column(name, justify="left" if name in ("metric", "variant") else "right")
    for metric in result.metrics:
        label = metric.label + (" (guardrail)" if metric.guardrail else "")
        label += " (primary)" if metric.name == result.primary else ""
        for i, (variant, summary) in enumerate(metric.analysis.variants.items()):
            value = (
                f"{_num(summary.mean, metric.kind)} "
                f"[{_num(summary.ci_low, metric.kind)}, {_num(summary.ci_high, metric.kind)}]"
            )
            compared = metric.analysis.comparisons.get(variant)
            cells = ["", "", "", ""]
            if compared is not None:
                low, high = compared.relative_ci
                cells = [
                    f"{_pct(compared.relative)} [{_pct(low)}, {_pct(high)}]",
                    f"{compared.p_value:.3g}",
                    f"{metric.adjusted_p.get(variant, math.nan):.3g}",
                    f"{compared.probability_to_beat:.0%}",
                ]
            table.add_row(label if i == 0 else "", variant, str(summary.n), value, *cells)
        table.add_section()
    console.print(table)
    split = ", ".join(
        f"{v} {n} ({n / max(sum(result.units.values()), 1):.0%}, expected {result.weights[v]:.0%})"
        for v, n in result.units.items()
    )
    state = "[red]FAILED[/red]" if result.srm.flagged else "ok"
    console.print(
        f"{result.unit.capitalize()}s: {split}; "
        f"sample ratio check p={result.srm.p_value:.3g}: {state}",
        soft_wrap=True,
    )
    for metric, why in result.skipped.items():
        console.print(f"[dim]{metric}: not analysed ({why})[/dim]")
    for verdict in result.verdicts.values():
        style = {"ship": "green", "stop": "red"}.get(verdict.decision, "yellow")
        console.print(
            f"[bold {style}]{verdict.line}[/bold {style}]", highlight=False, soft_wrap=True
        )
    if explain:
        console.print("\n[bold]Columns[/bold]")
        for name, meaning in COLUMNS:
            console.print(f"  [bold]{name}[/bold]: {meaning}", highlight=False)
        console.print(
            "  [bold]SRM[/bold]: sample ratio mismatch, the chi-square test of the split "
            "against the weights; below p=0.001 the split is broken and nothing ships\n"
            "  [bold]verdict[/bold]: stop when a guardrail is significantly worse; ship when "
            "the primary metric is significantly better; else keep running",
            highlight=False,
        )


async def _load(name: str, db: str, experiments: Path | None, correction: str) -> Any:
    from victor.experiments import load_experiments, report

    target: Any = name
    if experiments is not None:
        defined = {e.name: e for e in load_experiments(experiments)}
        if name not in defined:
            raise LookupError(
                f"{experiments} defines no experiment {name!r}; it defines: "
                f"{', '.join(defined) or 'none'}"
            )
        target = defined[name]
    return await report(target, store=db, correction=correction)


@app.command("report")
def report_command(
    name: Annotated[str, typer.Argument(help="The experiment's name.")],
    db: Db = None,
    experiments: Annotated[
        Path | None,
        typer.Option(
            "--experiments",
            help="The YAML file defining it (weights, control, primary and guardrail "
            "metrics); without it, the variants seen, equally weighted.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    correction: Annotated[
        Correction,
        typer.Option(
            help="Across each variant's metrics: holm (family-wise error) or bh "
            "(Benjamini-Hochberg, false discovery rate)."
        ),
    ] = Correction.holm,
) -> None:
    """Every metric per variant against the control, the split check, and a verdict."""
    from rich.console import Console

    try:
        result = asyncio.run(_load(name, db or _default_db(), experiments, correction.value))
    except Exception as exc:  # a CLI: one clear line, not a traceback
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    console = Console()
    if not console.is_terminal:  # piped: rich would fold the tables to 80 columns
        console = Console(width=150)
    print_report(console, result)
