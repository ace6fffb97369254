"""``victor bench``: measure the library on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Benchmarks.", no_args_is_help=True, add_completion=False)


@app.callback()
def _bench() -> None:
    """Measure Victor on this machine."""


@app.command()
def tools(
    data: Annotated[
        Path | None,
        typer.Option(help="Tool-retrieval data folder (default: ../shared/data/tool-retrieval)."),
    ] = None,
    sample: Annotated[int, typer.Option(help="MetaTool held-out queries to sample.")] = 2000,
    sizes: Annotated[str, typer.Option(help="Synthetic catalogue sizes for latency.")] = (
        "500,10000"
    ),
    png: Annotated[Path | None, typer.Option(help="Write the chart to this PNG.")] = Path(
        "tool_selection.png"
    ),
    tune: Annotated[
        bool, typer.Option(help="Also sweep hybrid alpha on the tuning split.")
    ] = False,
) -> None:
    """Tool selection: Recall@1/5/10, NDCG@10 and latency of keyword, semantic and hybrid
    selection on MetaTool and LiveMCPBench, and latency at 500 and 10,000 tools."""
    from victor.cli.tool_benchmark import main
    from victor.selection.datasets import default_data_dir

    folder = data or default_data_dir()
    if not (folder / "MetaTool").is_dir() or not (folder / "LiveMCPBench").is_dir():
        typer.echo(f"no MetaTool/ and LiveMCPBench/ under {folder}; pass --data", err=True)
        raise typer.Exit(2)
    counts = [int(s) for s in sizes.split(",") if s.strip()]
    main(folder, sample=sample, sizes=counts, png=png, tune=tune, echo=typer.echo)
