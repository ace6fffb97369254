"""``victor``: chat with a model, run the offline demo, and more."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from victor.__about__ import __version__
from victor.errors import VictorError

USAGE_ERROR = 2  # exit code of a mistake the user can fix: a flag, a setting, a file


class _Fixable(Exception):
    """A :class:`VictorError` on its way to be printed as one line."""


class VictorGroup(TyperGroup):
    """Mistakes the user can fix (a bad flag, a :class:`VictorError` such as a
    ``ConfigError``) print one line on stderr and exit with code 2; ``--debug`` (or
    ``VICTOR_DEBUG=1``) lets the exception through, with its traceback."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VictorError as exc:
            if ctx.params.get("debug"):
                raise
            raise _Fixable(str(exc)) from exc

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _Fixable as exc:
            typer.echo(f"victor: {exc}", err=True)
            sys.exit(USAGE_ERROR)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        except Exception as exc:
            # Command-line mistakes are click's UsageError and kin, which recent typer
            # versions keep in a private copy of click: recognised by what they offer.
            describe, exit_code = getattr(exc, "format_message", None), getattr(exc, "exit_code", 0)
            if describe is None or not isinstance(exit_code, int) or not exit_code:
                raise  # not a mistake on the command line: shown with its traceback
            ctx, message = getattr(exc, "ctx", None), describe()
            if type(exc).__name__ == "NoArgsIsHelpError":  # as typer tells it; help is shown
                if message.strip():  # (rich help is printed when made, plain help is not)
                    typer.echo(message, err=True)
            else:
                where = ctx.command_path if ctx is not None else "victor"
                typer.echo(f"{where}: {message.rstrip('.')}; see {where} --help", err=True)
            sys.exit(exit_code)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="victor",
    help="Victor: a coordinator-based orchestrator for LLM agents.",
    no_args_is_help=True,
    add_completion=False,
    cls=VictorGroup,
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
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            envvar="VICTOR_DEBUG",
            help="Show tracebacks and debug logs (also VICTOR_DEBUG=1).",
        ),
    ] = False,
) -> None:
    """Victor: a coordinator-based orchestrator for LLM agents."""
    import logging
    import os

    from victor.config.settings import LOG_LEVELS
    from victor.errors import ConfigError

    level = os.environ.get("VICTOR_LOG_LEVEL", "WARNING")
    if level.upper() not in LOG_LEVELS:
        raise ConfigError(
            f"VICTOR_LOG_LEVEL={level!r} is invalid (accepted: {', '.join(LOG_LEVELS)})"
        )
    logging.basicConfig(
        level="DEBUG" if debug else level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _checked(check):
    """An option callback: ``check``'s ValueError becomes a bad-parameter error."""

    def callback(value):
        try:
            return check(value)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None

    return callback


def _provider_option(value: str | None) -> str | None:
    from victor.cli.chat import check_provider

    return _checked(check_provider)(value)


def _base_url_option(value: str | None) -> str | None:
    from victor.cli.chat import check_base_url

    return _checked(check_base_url)(value)


@app.command()
def chat(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option(help="Model name (default: per provider).")] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            help="An OpenAI-compatible server, e.g. http://localhost:11434/v1.",
            callback=_base_url_option,
        ),
    ] = None,
    provider: Annotated[
        str | None,
        typer.Option(
            help="openai or anthropic (default: from the API key set).",
            callback=_provider_option,
        ),
    ] = None,
    session: Annotated[
        str | None, typer.Option(help="Session id to continue (shown when a chat starts).")
    ] = None,
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
    local OpenAI-compatible server (Ollama, vLLM, LM Studio, llama.cpp). In the chat,
    /help lists the commands and /exit leaves.
    """
    from victor.cli.chat import run_chat

    debug = bool(ctx.find_root().params.get("debug"))
    code = asyncio.run(run_chat(model, base_url, provider, session, system, api_key, debug=debug))
    raise typer.Exit(code)


@app.command()
def demo(
    sessions: Annotated[int, typer.Option(min=1, max=10_000, help="Conversations.")] = 300,
    turns: Annotated[int, typer.Option(min=1, max=50, help="Turns per conversation.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed of the simulated traffic.")] = 7,
    latency_ms: Annotated[
        float,
        typer.Option(
            help="Median simulated model latency, ms, in virtual time (no real wait; "
            "the treatment's is 1.4x)."
        ),
    ] = 400.0,
    dashboard: Annotated[
        bool,
        typer.Option(
            "--dashboard",
            help="Serve the live dashboard while the traffic runs (paced, so the charts "
            "move), and keep serving it after the report until Ctrl-C.",
        ),
    ] = False,
    host: Annotated[str, typer.Option(help="Dashboard address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Dashboard port.")] = 8050,
    token: Annotated[
        str | None,
        typer.Option(envvar="VICTOR_DASHBOARD_TOKEN", help="Dashboard access token."),
    ] = None,
) -> None:
    """Run offline: simulated conversations with tools through the whole agent loop and
    an A/B experiment of two models, then print the experiment's report."""
    from victor.cli.demo import run_demo

    asyncio.run(
        run_demo(
            sessions=sessions,
            turns=turns,
            seed=seed,
            latency_ms=latency_ms,
            dashboard=(host, port, token) if dashboard else None,
        )
    )


@app.command("dashboard")
def dashboard_command(
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Analytics store: a SQLite file or postgresql://... "
            "Default: analytics.db in the data directory.",
        ),
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to listen on; beyond loopback a --token is required.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port.")] = 8050,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="VICTOR_DASHBOARD_TOKEN",
            help="Access token the page sends first (also VICTOR_DASHBOARD_TOKEN).",
        ),
    ] = None,
    redis_url: Annotated[
        str | None,
        typer.Option(
            envvar="VICTOR_DASHBOARD_REDIS_URL",
            help="Redis for the events of every process (redis://...); default in-process.",
        ),
    ] = None,
) -> None:
    """Serve the live analytics dashboard over an analytics store: the page at
    /dashboard, live over the WebSocket /ws/analytics."""
    from victor.cli.dashboard import run_dashboard

    asyncio.run(run_dashboard(db=db, host=host, port=port, token=token, redis_url=redis_url))


def _register_subcommands() -> None:
    from victor.cli.analytics import app as analytics_app
    from victor.cli.bench import app as bench_app
    from victor.cli.experiments import app as experiments_app
    from victor.cli.serve import keys_app, serve

    app.command()(serve)
    app.add_typer(keys_app, name="keys")
    app.add_typer(analytics_app, name="analytics")
    app.add_typer(bench_app, name="bench")
    app.add_typer(experiments_app, name="experiments")


_register_subcommands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
