"""The interactive ``victor chat`` loop.

The conversation goes to stdout; everything about it (retries, errors) goes to stderr as
short dim or red lines, so that provider log records never land in the middle of an answer.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from rich.console import Console

from victor.config.settings import Settings
from victor.errors import ConfigError, ProviderConnectionError, ProviderError, VictorError
from victor.protocols.analytics import new_session_id

PROVIDERS = ("openai", "anthropic")
DEFAULT_URLS = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com"}
BASE_URL_VARIABLES = {"openai": "OPENAI_BASE_URL", "anthropic": "ANTHROPIC_BASE_URL"}
COMMANDS = {
    "/help": "list these commands",
    "/exit": "leave the chat (also Ctrl-D)",
    "/quit": "the same as /exit",
}


def check_provider(value: str | None) -> str | None:
    """``--provider``: None or one of :data:`PROVIDERS`; else ValueError saying so."""
    if value is not None and value not in PROVIDERS:
        raise ValueError(f"{value!r} is not one of {', '.join(map(repr, PROVIDERS))}")
    return value


def check_base_url(value: str | None) -> str | None:
    """``--base-url``: None or an http(s) URL with a host; else ValueError saying so."""
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL such as http://localhost:11434/v1")
    return value


def _unreachable(error: ProviderConnectionError, url: str) -> str:
    """``cannot reach URL: connection refused``, from the OS error under the SDK's."""
    reason = None
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno:
            reason = os.strerror(cause.errno) if cause.errno > 0 else cause.strerror
        cause = cause.__cause__ or cause.__context__
    reason = reason or str(error).removeprefix(f"{error.provider}: ")
    return f"cannot reach {url}: {reason[:1].lower()}{reason[1:]}"


def describe(error: VictorError, url: str) -> str:
    if isinstance(error, ProviderConnectionError):
        return _unreachable(error, url)
    return f"{type(error).__name__}: {error}"


def _provider(
    name: str | None, base_url: str | None, api_key: str | None, settings: Settings, on_retry
):
    """The provider to talk to, its default model and the URL it calls."""
    from victor.providers import RetryPolicy

    if base_url and name == "anthropic":
        raise ConfigError("--base-url is for OpenAI-compatible servers; drop --provider anthropic")
    if not name:
        if base_url or os.environ.get("OPENAI_API_KEY"):
            name = "openai"
        elif os.environ.get("ANTHROPIC_API_KEY"):
            name = "anthropic"
        else:
            raise ConfigError(
                "no model to talk to: set OPENAI_API_KEY or ANTHROPIC_API_KEY, or pass "
                "--base-url http://localhost:11434/v1 for a local OpenAI-compatible server"
            )
    retry = RetryPolicy(max_retries=settings.max_retries, on_retry=on_retry)
    url = base_url or os.environ.get(BASE_URL_VARIABLES[name]) or DEFAULT_URLS[name]
    if name == "openai":
        from victor.providers.openai import OpenAIProvider

        provider = OpenAIProvider(
            api_key=api_key,
            base_url=base_url,
            timeout=settings.request_timeout,
            retry_policy=retry,
        )
    else:
        from victor.providers.anthropic import AnthropicProvider

        provider = AnthropicProvider(
            api_key=api_key, timeout=settings.request_timeout, retry_policy=retry
        )
    return provider, url


@contextmanager
def _quiet_provider_logs(debug: bool) -> Iterator[None]:
    """Without ``--debug``, the providers' retry warnings give way to the status lines."""
    log = logging.getLogger("victor.providers")
    level = log.level
    if not debug:
        log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _help(console: Console) -> None:
    for command, what in COMMANDS.items():
        console.print(f"[bold]{command}[/bold]  {what}", highlight=False)
    console.print("Anything else is sent to the model.")


async def run_chat(
    model: str | None,
    base_url: str | None,
    provider_name: str | None,
    session: str | None,
    system: str | None,
    api_key: str | None = None,
    *,
    debug: bool = False,
) -> int:
    """Chat until /exit or end of input. Configuration mistakes raise :class:`ConfigError`
    before anything else happens (no model call); a failed turn prints one line and the
    conversation goes on."""
    settings = Settings()
    settings.ensure_data_dir()  # blocking, but before the loop serves anything else

    from victor.agent.orchestrator import AgentOrchestrator

    console = Console(highlight=False)
    status = Console(stderr=True, highlight=False)

    def on_retry(error: ProviderError, attempt: int, delay: float) -> None:
        status.print(
            f"[dim]{describe(error, url)}; retry {attempt}/{settings.max_retries} "
            f"in {delay:.1f} s[/dim]",
            markup=True,
        )

    provider, url = _provider(provider_name, base_url, api_key, settings, on_retry)
    orchestrator = AgentOrchestrator(
        settings=settings, provider=provider, model=model, system_prompt=system
    )
    session_id = session or new_session_id()
    console.print(f"[dim]model {orchestrator.model} at {url}[/dim]", soft_wrap=True)
    console.print(
        f"[dim]session {session_id}; continue it later with: "
        f"victor chat --session {session_id}[/dim]",
        soft_wrap=True,
    )
    console.print("[dim]/help for commands, /exit or Ctrl-D to leave[/dim]")
    with _quiet_provider_logs(debug):
        async with orchestrator:
            while True:
                try:
                    text = console.input("[bold cyan]you>[/bold cyan] ")
                except (EOFError, KeyboardInterrupt):
                    console.print()
                    return 0
                command = text.strip()
                if command in ("/exit", "/quit"):
                    return 0
                if command == "/help":
                    _help(console)
                    continue
                if command.startswith("/") and " " not in command:
                    status.print(f"[yellow]unknown command {command}; /help lists them[/yellow]")
                    continue
                if not command:
                    continue
                await _turn(orchestrator, text, session_id, console, status, url)


async def _turn(orchestrator, text: str, session_id: str, console, status, url: str) -> None:
    answering = False  # "model>" once something comes back, not before a failure
    try:
        async for chunk in orchestrator.stream(text, session_id=session_id):
            if not answering and chunk.type in ("text", "tool_start"):
                console.print("[bold green]model>[/bold green] ", end="")
                answering = True
            if chunk.type == "text":
                console.print(chunk.text, end="", markup=False)
            elif chunk.type == "tool_start" and chunk.tool_call:
                console.print(f"\n[dim]-> {chunk.tool_call.name}[/dim]")
            elif chunk.type == "done" and chunk.response:
                cost = chunk.response.cost
                price = "unpriced" if cost is None else f"${cost:.5f}"
                console.print(
                    f"\n[dim]{chunk.response.usage.total_tokens} tokens, {price}, "
                    f"{chunk.response.latency_ms:.0f} ms[/dim]"
                )
    except VictorError as exc:
        if answering:
            console.print()
        status.print(f"[red]{describe(exc, url)}[/red]", markup=True)
