"""``victor``: chat with a model, run the offline demo, and more."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from victor.__about__ import __version__

app = typer.Typer(
    name="victor",
    help="Victor: a coordinator-based orchestrator for LLM agents.",
    no_args_is_help=True,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"victor {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Victor: a coordinator-based orchestrator for LLM agents."""
    import logging
    import os

    logging.basicConfig(
        level=os.environ.get("VICTOR_LOG_LEVEL", "WARNING").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@app.command()
def chat(
    model: Annotated[str | None, typer.Option(help="Model name (default: per provider).")] = None,
    base_url: Annotated[
        str | None,
        typer.Option(help="An OpenAI-compatible server, e.g. http://localhost:11434/v1."),
    ] = None,
    provider: Annotated[
        str | None, typer.Option(help="openai or anthropic (default: from the API key set).")
    ] = None,
    session: Annotated[str | None, typer.Option(help="Session id to continue.")] = None,
    system: Annotated[str | None, typer.Option(help="System prompt.")] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="VICTOR_API_KEY",
            help="Key for --base-url servers that need one (the OpenAI key is never sent "
            "to another host unless given here).",
        ),
    ] = None,
) -> None:
    """Chat in the terminal with a real model.

    The provider comes from OPENAI_API_KEY or ANTHROPIC_API_KEY, or --base-url for a
    local OpenAI-compatible server (Ollama, vLLM, LM Studio, llama.cpp).
    """
    from victor.cli.chat import run_chat

    raise typer.Exit(asyncio.run(run_chat(model, base_url, provider, session, system, api_key)))


@app.command()
def demo(
    sessions: Annotated[int, typer.Option(min=1, max=10_000, help="Conversations.")] = 40,
    turns: Annotated[int, typer.Option(min=1, max=50, help="Turns per conversation.")] = 3,
    seed: Annotated[int, typer.Option(help="Seed of the simulated traffic.")] = 7,
    latency_ms: Annotated[float, typer.Option(help="Median simulated model latency.")] = 5.0,
) -> None:
    """Run offline: simulated conversations with tools through the whole agent loop,
    split between two configurations, then print what happened."""
    from victor.cli.demo import run_demo

    asyncio.run(run_demo(sessions=sessions, turns=turns, seed=seed, latency_ms=latency_ms))


def _register_subcommands() -> None:
    from victor.cli.analytics import app as analytics_app
    from victor.cli.bench import app as bench_app

    app.add_typer(analytics_app, name="analytics")
    app.add_typer(bench_app, name="bench")


_register_subcommands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
