"""``victor analytics``: what the agents did over a time window, from the analytics store."""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from victor.errors import VictorError
from victor.protocols.sql import redact_dsn

app = typer.Typer(
    help="Summaries of tokens, cost, latency and errors from the analytics store.",
    add_completion=False,
)

Since = Annotated[
    str, typer.Option("--since", help="Window start: 30m, 24h, 7d, or an ISO date/time.")
]
Db = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="VICTOR_ANALYTICS_DB",
        help="SQLite file, sqlite:///path or postgresql://... (?schema=&table=). "
        "Default: analytics.db in the data directory.",
    ),
]
By = Annotated[
    str,
    typer.Option(
        "--by",
        help="model, tool, tenant, experiment, variant, type, session or bucket; "
        "several with commas (experiment,variant).",
    ),
]
Bucket = Annotated[str, typer.Option("--bucket", help="Bucket size with --by bucket: 5m, 1h, 1d.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _default_db() -> str:
    from victor.config import Settings

    return str(Settings().data_dir / "analytics.db")


def _fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.2f}s" if value >= 1000 else f"{value:.0f}ms"


def _fmt_cost(value: float | None, digits: int, unpriced: int) -> str:
    """A cost; "-" when nothing was priced (unknown, not $0), "+" when a lower bound."""
    if value is None:
        return "-"
    if 0 < abs(value) < 10**-digits:  # a small cost is not "0.00": two significant digits
        digits = min(8, 1 - math.floor(math.log10(abs(value))))
    return f"{value:,.{digits}f}" + ("+" if unpriced else "")


def _fmt_int(value: int) -> str:
    return f"{value:,}"


def _fmt_short(value: int) -> str:
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.1f}{suffix}"
    return str(value)


def _fail(exc: Exception) -> NoReturn:
    """One line on stderr; exit code 2 for what the user can fix (a path, a name, a
    setting), 1 for the rest (a database that is down)."""
    fixable = isinstance(exc, VictorError | ValueError | LookupError | FileNotFoundError)
    typer.echo(f"error: {exc or type(exc).__name__}", err=True)
    raise typer.Exit(2 if fixable else 1) from None


async def _load(db: str, since: str, by: list[str], bucket: str) -> tuple[list[Any], Any]:
    from victor.analytics.reports import AnalyticsReader

    async with AnalyticsReader.from_url(db) as reader:
        rows = await reader.summary(since, by=by, bucket=bucket)
        total = await reader.totals(since)
    return rows, total


def _print_summary(since: str, db: str | None, by: str, bucket: str, as_json: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    dims = [d.strip() for d in by.split(",") if d.strip()]
    database = db or _default_db()
    try:
        rows, total = asyncio.run(_load(database, since, dims, bucket))
    except Exception as exc:  # a CLI: one clear line, not a traceback
        _fail(exc)
    if as_json:
        payload = [
            {
                **asdict(r),
                "key": [v.isoformat() if isinstance(v, datetime) else v for v in r.key],
                "error_rate": r.error_rate,
            }
            for r in [*rows, total]
        ]
        typer.echo(json.dumps(payload, indent=2))
        return
    table = Table(
        title=f"Analytics since {since} by {', '.join(dims)}", caption=redact_dsn(database)
    )
    widest = max((len(r.label) for r in rows), default=8)
    table.add_column(" / ".join(dims), no_wrap=True, min_width=min(widest, 32))
    wide = console.width >= 140  # else the columns that matter most, numbers abbreviated
    num = _fmt_int if wide else _fmt_short
    columns: list[tuple[str, Any]] = [
        ("events", lambda r: num(r.events)),
        ("turns", lambda r: num(r.turns)),
        ("model calls", lambda r: num(r.requests)),
        ("tool calls", lambda r: num(r.tool_calls)),
    ]
    if wide:
        columns += [
            ("tokens in", lambda r: num(r.input_tokens)),
            ("tokens out", lambda r: num(r.output_tokens)),
        ]
    else:
        columns = [columns[0], ("tokens", lambda r: num(r.total_tokens))]
    cost_digits = 4 if wide else 2
    columns.append(
        (
            "cost USD" if wide else "USD",
            lambda r: _fmt_cost(r.cost_usd, cost_digits, r.unpriced),
        )
    )
    if wide:
        columns.append(("unpriced", lambda r: num(r.unpriced) if r.unpriced else "-"))
    columns += [
        ("p50", lambda r: _fmt_ms(r.latency_p50_ms)),
        ("p95", lambda r: _fmt_ms(r.latency_p95_ms)),
        ("p99", lambda r: _fmt_ms(r.latency_p99_ms)),
        ("errors" if wide else "err", lambda r: f"{r.error_rate:.1%}"),
    ]
    for name, _ in columns:
        table.add_column(name, justify="right", no_wrap=True)

    def add(row: Any, label: str, style: str | None = None) -> None:
        table.add_row(label, *(cell(row) for _, cell in columns), style=style)

    for row in rows:
        add(row, row.label)
    if total.events:
        table.add_section()
        add(total, "total (turn latency)" if wide else "total", style="bold")
    console.print(table)
    if not rows:
        console.print(f"no events since {since}")
    elif total.unpriced:
        console.print(
            f"[yellow]{total.unpriced} model call(s) of unpriced models: costs shown are a "
            "lower bound ('+'). Add their prices with VICTOR_PRICES_FILE.[/yellow]"
        )


@app.callback(invoke_without_command=True)
def analytics(
    ctx: typer.Context,
    since: Since = "24h",
    db: Db = None,
    by: By = "model",
    bucket: Bucket = "1h",
    as_json: AsJson = False,
) -> None:
    """Summary table for a time window (the same as ``victor analytics summary``)."""
    if ctx.invoked_subcommand is None:
        _print_summary(since, db, by, bucket, as_json)


@app.command()
def summary(
    since: Since = "24h",
    db: Db = None,
    by: By = "model",
    bucket: Bucket = "1h",
    as_json: AsJson = False,
) -> None:
    """Counts, tokens, cost, latency percentiles and error rate per group."""
    _print_summary(since, db, by, bucket, as_json)


@app.command()
def outbox(
    path: Annotated[
        Path | None, typer.Option("--path", help="Outbox file (default: in the data dir).")
    ] = None,
) -> None:
    """Batches waiting for remote exporters, per destination."""
    from rich.console import Console
    from rich.table import Table

    from victor.analytics.outbox import Outbox

    if path is None:
        from victor.config import Settings

        path = Settings().data_dir / "analytics-outbox.db"
    box = Outbox(path)
    try:
        statuses = box.status()
    finally:
        box.close()
    table = Table(title=f"Analytics outbox ({path})")
    table.add_column("destination")
    for name in ("batches waiting", "bytes"):
        table.add_column(name, justify="right")
    for status in statuses:
        table.add_row(status.destination, f"{status.batches:,}", f"{status.bytes:,}")
    Console().print(table if statuses else f"nothing waits in {path}")


@app.command()
def prices(
    file: Annotated[
        Path | None,
        typer.Option("--file", help="A YAML/JSON override file (else VICTOR_PRICES_FILE)."),
    ] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", help="Show the price of this model.")
    ] = None,
) -> None:
    """The overrides in force and the price of given models (USD per million tokens)."""
    from rich.console import Console
    from rich.table import Table

    from victor.pricing import load_price_table

    try:
        table_ = load_price_table(file)
    except (OSError, ValueError, ImportError) as exc:
        _fail(exc)
    table = Table(title=f"Prices ({table_.version})")
    for name in ("model", "priced as", "from", "input", "output", "cached input"):
        table.add_column(
            name, justify="left" if name in ("model", "priced as", "from") else "right"
        )
    rows = [(p.model, p) for p in table_.entries()]
    rows += [(name, table_.price(name)) for name in model or ()]
    for name, price in rows:
        if price is None:
            table.add_row(name, "unpriced", "-", "-", "-", "-")
            continue
        table.add_row(
            name,
            price.model,
            price.effective_from.isoformat(),
            *(_fmt_rate(r) for r in (price.input, price.output, price.cached_input)),
        )
    Console().print(table)


def _fmt_rate(rate: Any) -> str:
    if rate is None:
        return "-"
    if isinstance(rate, tuple):  # tiers by prompt size
        return " / ".join(f"{r:g}" + (f" >{start // 1000}k" if start else "") for start, r in rate)
    return f"{rate:g}"
