"""``victor serve`` and ``victor keys``: the HTTP server and its API keys."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import typer

from victor.errors import ConfigError

keys_app = typer.Typer(help="API keys of the server's tenants.", add_completion=False)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="The server's YAML file (victor.yaml).")
]
KeysOption = Annotated[
    str | None,
    typer.Option(
        "--keys",
        help="The key store: a SQLite file or postgresql://... (default: the config's "
        "server.keys, VICTOR_SERVER_KEYS, or <data_dir>/keys.db).",
    ),
]

BANNER = """\
************************************************************************
* victor serve: NO API KEY EXISTS - running WITHOUT AUTHENTICATION,    *
* listening on loopback only ({where}).
* Create a key (victor keys create --tenant NAME) to serve others.     *
************************************************************************"""


def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(min=0, max=65535, help="Port.")] = None,
) -> None:
    """Serve the orchestrator over HTTP (chat, OpenAI-compatible chat completions).

    Also sessions, feedback, /metrics, /openapi.json. Without --config the provider comes from the
    environment (VICTOR_PROVIDER, OPENAI_API_KEY, OPENAI_BASE_URL, ANTHROPIC_API_KEY,
    VICTOR_MODEL)."""
    from victor.server.settings import load_serve_config

    settings = load_serve_config(config, host=host, port=port)
    try:
        import uvloop
    except ImportError:  # Windows, or installed without the [server] extra's uvloop
        asyncio.run(_serve(settings))
    else:
        uvloop.run(_serve(settings))


async def _serve(config) -> None:  # type: ignore[no-untyped-def]
    from victor.server.factory import build_app
    from victor.server.run import serve_app

    app, auth = await build_app(config)
    # What start-up made lives as long as the process: out of the collector's sight,
    # full collections stay short under load; young collections every 20,000
    # allocations rather than 700 (a turn allocates thousands of short-lived objects).
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    server = config.server
    where = f"http://{server.host}:{server.port}"
    if not auth:
        typer.echo(BANNER.format(where=where), err=True)
    else:
        typer.echo(f"victor serve: listening on {where} (API keys required)", err=True)
    await serve_app(app, server.host, server.port, graceful_timeout=server.graceful_timeout)


@contextlib.asynccontextmanager
async def _opened(config: Path | None, keys: str | None) -> AsyncIterator[Any]:
    """The key store named by ``--keys``, else by the config; closed after use."""
    from victor.server.factory import key_store_for
    from victor.server.keys import key_store_from_url
    from victor.server.settings import load_serve_config

    store = key_store_from_url(keys) if keys else key_store_for(load_serve_config(config))
    try:
        yield store
    finally:
        await store.aclose()


def _models(value: str | None) -> list[str] | None:
    if value is None:
        return None
    models = [m.strip() for m in value.split(",") if m.strip()]
    if not models:
        raise ConfigError("--models: give model names separated by commas")
    return models


@keys_app.command("create")
def create(
    tenant: Annotated[str, typer.Option(help="The tenant the key acts for.")],
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
    models: Annotated[
        str | None, typer.Option(help="Allowed models, separated by commas (default: any).")
    ] = None,
    budget: Annotated[
        float | None, typer.Option(min=0, help="Spend budget in USD per period.")
    ] = None,
    period: Annotated[str, typer.Option(help="Budget period: day, month or total.")] = "month",
    rpm: Annotated[int | None, typer.Option(min=1, help="Requests a minute.")] = None,
    tpm: Annotated[int | None, typer.Option(min=1, help="Tokens a minute.")] = None,
    config: ConfigOption = None,
    keys: KeysOption = None,
) -> None:
    """Create a key; it is printed once (only its hash is stored)."""

    async def run() -> None:
        async with _opened(config, keys) as store:
            key, record = await store.create(
                tenant,
                name=name,
                allowed_models=_models(models),
                budget_usd=budget,
                budget_period=period,
                rpm=rpm,
                tpm=tpm,
            )
        typer.echo(key)
        typer.echo(
            f"id {record.id}, tenant {record.tenant_id} (the key is not shown again)", err=True
        )

    asyncio.run(run())


@keys_app.command("list")
def list_keys(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False,
    config: ConfigOption = None,
    keys: KeysOption = None,
) -> None:
    """List keys (never the keys themselves): id, tenant, prefix, limits, state."""

    async def run() -> None:
        async with _opened(config, keys) as store:
            records = await store.list(tenant)
        for r in records:
            if as_json:
                typer.echo(json.dumps(r.as_dict()))
                continue
            state = f"revoked {r.revoked_at}" if r.revoked_at else "active"
            limits = [
                f"models={','.join(r.allowed_models)}" if r.allowed_models else "",
                f"budget={r.budget_usd:g}/{r.budget_period}" if r.budget_usd is not None else "",
                f"rpm={r.rpm}" if r.rpm else "",
                f"tpm={r.tpm}" if r.tpm else "",
            ]
            extra = " ".join(x for x in limits if x)
            typer.echo(f"{r.id}  {r.tenant_id}  {r.prefix}...  {r.name or '-'}  {state}  {extra}")

    asyncio.run(run())


@keys_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (from victor keys list).")],
    config: ConfigOption = None,
    keys: KeysOption = None,
) -> None:
    """Revoke a key: every request with it is refused from now on."""

    async def run() -> None:
        async with _opened(config, keys) as store:
            found = await store.revoke(key_id)
        if not found:
            raise ConfigError(f"no active key with id {key_id!r}")
        typer.echo(f"revoked {key_id}")

    asyncio.run(run())
