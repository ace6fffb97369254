"""``victor bench``: measure the library on this machine."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Benchmarks.", no_args_is_help=True, add_completion=False)

DATA_ENV = "VICTOR_BENCH_DATA"
PUBLIC_SETS = ("MetaTool", "LiveMCPBench", "Gorilla")


@app.callback()
def _bench() -> None:
    """Measure Victor on this machine."""


def _fail(message: str) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(2)


@app.command()
def tools(
    data: Annotated[
        Path | None,
        typer.Option(
            help=f"Folder holding the public tool-retrieval data ({', '.join(PUBLIC_SETS)}"
            f" sub-folders); default: ${DATA_ENV}."
        ),
    ] = None,
    tools_file: Annotated[
        Path | None,
        typer.Option(
            "--tools",
            help='Your catalogue: a JSON list of tools ({"name", "description", '
            '"parameters"?, "domain"?, "tags"?}; OpenAI and MCP shapes work too).',
        ),
    ] = None,
    queries_file: Annotated[
        Path | None,
        typer.Option(
            "--queries",
            help='Your labelled queries, JSONL: {"query": "...", "gold": ["tool", ...]} a line.',
        ),
    ] = None,
    sample: Annotated[int, typer.Option(help="MetaTool held-out queries to sample.")] = 2000,
    sizes: Annotated[str, typer.Option(help="Synthetic catalogue sizes for latency.")] = (
        "500,10000"
    ),
    png: Annotated[Path | None, typer.Option(help="Write the chart to this PNG.")] = Path(
        "tool_selection.png"
    ),
) -> None:
    """Tool selection: Recall@1/5/10, NDCG@10 and latency of keyword, semantic and hybrid
    selection, on your own catalogue (--tools and --queries: which strategy and
    hybrid_alpha to pick) or on the public data sets (--data), plus latency at 500 and
    10,000 tools."""
    if tools_file is not None or queries_file is not None:
        _user_catalogue(tools_file, queries_file)
        return
    source = "--data"
    if data is None and os.environ.get(DATA_ENV):
        data, source = Path(os.environ[DATA_ENV]), DATA_ENV
    if data is None:
        _fail(
            "no data: pass --tools FILE --queries FILE (your catalogue) or --data DIR "
            f"(a folder with {', '.join(f'{s}/' for s in PUBLIC_SETS)}), or set {DATA_ENV}"
        )
        return
    missing = [s for s in PUBLIC_SETS if not (data / s).is_dir()]
    if missing:
        _fail(f"{data} (from {source}) has no {', '.join(f'{s}/' for s in missing)}; pass --data")
    try:
        counts = [int(s) for s in sizes.split(",") if s.strip()]
    except ValueError:
        _fail(f"--sizes {sizes!r}: expected tool counts separated by commas, e.g. 500,10000")
        return
    from victor.cli.tool_benchmark import main

    typer.echo(f"data: {data.resolve()} (from {source})")
    main(data, sample=sample, sizes=counts, png=png, echo=typer.echo)


def _user_catalogue(tools_file: Path | None, queries_file: Path | None) -> None:
    if tools_file is None or queries_file is None:
        _fail("--tools and --queries go together: a catalogue and queries labelled against it")
        return
    import asyncio

    from victor.cli.tool_benchmark import compare_on_catalogue
    from victor.selection.datasets import (
        DataError,
        Dataset,
        load_user_catalogue,
        load_user_queries,
    )

    try:
        catalogue = load_user_catalogue(tools_file)
        queries = load_user_queries(queries_file, {t.name for t in catalogue})
    except DataError as exc:
        _fail(str(exc))
        return
    typer.echo(
        f"data: {tools_file} ({len(catalogue)} tools), {queries_file} ({len(queries)} queries)"
    )
    dataset = Dataset(tools_file.name, catalogue, queries)
    asyncio.run(compare_on_catalogue(dataset, echo=typer.echo))
