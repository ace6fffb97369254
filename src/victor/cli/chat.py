"""The interactive ``victor chat`` loop."""

from __future__ import annotations

import os

from rich.console import Console

from victor.errors import VictorError


def _provider(name: str | None, base_url: str | None, api_key: str | None = None):
    if base_url and name == "anthropic":
        raise VictorError("--base-url is for OpenAI-compatible servers; drop --provider anthropic")
    if base_url or name == "openai" or (name is None and os.environ.get("OPENAI_API_KEY")):
        from victor.providers.openai import OpenAIProvider

        return OpenAIProvider(api_key=api_key, base_url=base_url), "gpt-4o-mini"
    if name == "anthropic" or (name is None and os.environ.get("ANTHROPIC_API_KEY")):
        from victor.providers.anthropic import AnthropicProvider

        return AnthropicProvider(api_key=api_key), "claude-sonnet-4-5"
    raise VictorError(
        "no model to talk to: set OPENAI_API_KEY or ANTHROPIC_API_KEY, or pass "
        "--base-url http://localhost:11434/v1 for a local OpenAI-compatible server"
    )


async def run_chat(
    model: str | None,
    base_url: str | None,
    provider_name: str | None,
    session: str | None,
    system: str | None,
    api_key: str | None = None,
) -> int:
    from victor.agent.orchestrator import AgentOrchestrator

    console = Console()
    try:
        provider, default_model = _provider(provider_name, base_url, api_key)
    except VictorError as exc:
        console.print(f"[red]{exc}[/red]")
        return 2
    orchestrator = AgentOrchestrator(
        provider=provider, model=model or default_model, system_prompt=system
    )
    session_id = session
    console.print(f"[dim]model {orchestrator.model}; Ctrl-D or /exit to leave[/dim]")
    async with orchestrator:
        while True:
            try:
                text = console.input("[bold cyan]you>[/bold cyan] ")
            except (EOFError, KeyboardInterrupt):
                console.print()
                return 0
            if text.strip() in ("/exit", "/quit"):
                return 0
            if not text.strip():
                continue
            console.print("[bold green]model>[/bold green] ", end="")
            try:
                async for chunk in orchestrator.stream(text, session_id=session_id):
                    if chunk.type == "text":
                        console.print(chunk.text, end="", markup=False, highlight=False)
                    elif chunk.type == "tool_start" and chunk.tool_call:
                        console.print(f"\n[dim]-> {chunk.tool_call.name}[/dim]")
                    elif chunk.type == "done" and chunk.response:
                        session_id = chunk.response.session_id
                        cost = chunk.response.cost
                        price = "unpriced" if cost is None else f"${cost:.5f}"
                        console.print(
                            f"\n[dim]{chunk.response.usage.total_tokens} tokens, {price}, "
                            f"{chunk.response.latency_ms:.0f} ms[/dim]"
                        )
            except VictorError as exc:
                console.print(f"\n[red]{type(exc).__name__}: {exc}[/red]")
