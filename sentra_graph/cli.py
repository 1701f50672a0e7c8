"""The ``sentra-graph`` command: thin verbs over the package's service functions."""

from __future__ import annotations

import logging
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from sentra_graph.config import Settings
    from sentra_graph.store import Store

app = typer.Typer(
    name="sentra-graph",
    help="Expose coordinated fake-account farms that distil a model through its API.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
ingest_app = typer.Typer(help="Load accounts or requests from files.", no_args_is_help=True)
allow_app = typer.Typer(help="Manage allow-lists (accounts, orgs, IPs).", no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")
app.add_typer(allow_app, name="allow")


class Fail(Exception):
    """A command failed for a reason the user can act on; printed as one line."""


class Format(StrEnum):
    csv = "csv"
    json = "json"


class MinDecision(StrEnum):
    block = "block"
    review = "review"


class Label(StrEnum):
    farm = "farm"
    legit = "legit"


class AllowKind(StrEnum):
    account = "account"
    org = "org"
    ip = "ip"


def _settings() -> Settings:
    from sentra_graph.config import get_settings

    return get_settings()


def _store(require_schema: bool = True) -> Store:
    from sentra_graph.store import open_store

    store = open_store(_settings().database_url)
    if require_schema:
        store.require_schema()
    return store


def _console() -> Console:
    from rich.console import Console

    return Console(stderr=True)


@app.command()
def init() -> None:
    """Create or migrate the schema of the configured store."""
    store = _store(require_schema=False)
    revision = store.init()
    typer.echo(f"schema at revision {revision} on {store.backend}")


def _ingest(kind: str, files: list[Path], rejects: Path | None, strict: bool) -> None:
    from sentra_graph.ingest import ingest_files

    settings = _settings()
    summary = ingest_files(
        _store(),
        kind,
        files,
        rejects or Path(settings.rejects_path),
        strict=strict,
        chunk_rows=settings.ingest_chunk_rows,
        progress=sys.stderr.isatty(),
    )
    typer.echo(summary.line())
    if strict and summary.rejected:
        raise Fail(f"{summary.rejected} rows rejected (--strict); see {summary.rejects_path}")


FilesArg = Annotated[
    list[Path], typer.Argument(help="Files: .jsonl, .csv, .parquet, .jsonl.gz, .csv.gz")
]
RejectsOpt = Annotated[
    Path | None,
    typer.Option(
        help="Where rejected rows go (JSONL). Default: SENTRA_REJECTS_PATH, sentra_rejects.jsonl."
    ),
]
StrictOpt = Annotated[bool, typer.Option(help="Exit non-zero if any row is rejected.")]


@ingest_app.command("accounts")
def ingest_accounts(files: FilesArg, rejects: RejectsOpt = None, strict: StrictOpt = False) -> None:
    """Load (upsert) account records."""
    _ingest("accounts", files, rejects, strict)


@ingest_app.command("requests")
def ingest_requests(files: FilesArg, rejects: RejectsOpt = None, strict: StrictOpt = False) -> None:
    """Load request records (a request_id already stored is skipped)."""
    _ingest("requests", files, rejects, strict)


@app.command()
def sync() -> None:
    """Read what is new in the configured gateway/billing tables (SENTRA_SOURCE_*)."""
    from sentra_graph.ingest.source import sync_source

    summary = sync_source(_store(), _settings(), progress=sys.stderr.isatty())
    typer.echo(summary.line())


@app.command()
def run(
    window_days: Annotated[
        float | None, typer.Option(help="Window length (default SENTRA_WINDOW_DAYS).")
    ] = None,
) -> None:
    """One full detection run: graph -> farms -> scores -> published decisions."""
    from sentra_graph.pipeline import run_detection

    settings = _settings()
    if window_days is not None:
        settings = settings.model_copy(update={"window_days": window_days})
    console = _console()
    with console.status("detection run") as status:
        summary = run_detection(
            _store(), settings, progress=lambda stage: status.update(f"detection run: {stage}")
        )
    typer.echo(summary.line())


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Default SENTRA_HOST, 127.0.0.1.")] = None,
    port: Annotated[int | None, typer.Option(help="Default SENTRA_PORT, 8000.")] = None,
    with_scheduler: Annotated[
        bool, typer.Option(help="Also run the scheduler, in its own process.")
    ] = False,
    insecure_dev: Annotated[
        bool, typer.Option(help="Allow starting with no API keys (development only).")
    ] = False,
) -> None:
    """Serve the HTTP lookup API."""
    from api.server import serve as serve_api

    settings = _settings()
    serve_api(
        host or settings.host,
        port or settings.port,
        with_scheduler=with_scheduler,
        insecure_dev=insecure_dev,
    )


@app.command()
def schedule() -> None:
    """Run the scheduler: periodic detection runs and ban-list exports."""
    from jobs.scheduler import run_scheduler

    _store()
    run_scheduler(_settings())


@app.command("export-banlist")
def export_banlist(
    out: Annotated[Path, typer.Option(help="Output file (written atomically).")],
    format: Annotated[Format, typer.Option("--format", help="csv or json.")] = Format.csv,
    min_decision: Annotated[
        MinDecision, typer.Option(help="block, or review (review or block).")
    ] = MinDecision.block,
) -> None:
    """Write the served decisions at or above --min-decision to a ban list."""
    from sentra_graph.banlist import write_banlist

    count = write_banlist(_store(), out, format.value, min_decision.value)
    typer.echo(f"wrote {count} accounts to {out}")


@app.command()
def explain(
    account_id: Annotated[str, typer.Argument(help="The account to explain.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Why an account got its decision: score, farm, reasons and evidence."""
    import json

    from rich.console import Console

    from sentra_graph.explain import explain_account, render_explanation

    explanation = explain_account(_store(), account_id)
    if as_json:
        typer.echo(json.dumps(explanation.to_dict(), default=str))
    else:
        render_explanation(explanation, Console())


@app.command()
def report(
    out: Annotated[Path, typer.Option(help="Directory for the HTML report.")],
    run_id: Annotated[str | None, typer.Option(help="Default: the published run.")] = None,
    top: Annotated[int, typer.Option(help="How many farms get drawings and timelines.")] = 5,
) -> None:
    """Write a static HTML report of a run (opens in any browser, no server)."""
    from sentra_graph.report import write_report

    index = write_report(_store(), out, run_id=run_id, top_n=top)
    typer.echo(f"report written to {index}")


@app.command()
def feedback(
    account_id: str,
    label: Annotated[
        Label, typer.Argument(help="farm (confirmed member) or legit (false positive).")
    ],
    note: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Record an analyst label; honoured by the next run."""
    _store().add_feedback(account_id, label.value, note=note, author="cli")
    typer.echo(f"recorded {label.value} for {account_id}")


@allow_app.command("add")
def allow_add(
    kind: AllowKind, value: str, note: Annotated[str | None, typer.Option()] = None
) -> None:
    """Allow-list an account, org or IP (never blocked from the next run on)."""
    _store().add_allow(kind.value, value, note)
    typer.echo(f"allow-listed {kind.value} {value}")


@allow_app.command("remove")
def allow_remove(kind: AllowKind, value: str) -> None:
    """Remove an allow-list entry."""
    if not _store().remove_allow(kind.value, value):
        raise Fail(f"no allow-list entry {kind.value} {value}")
    typer.echo(f"removed {kind.value} {value}")


@app.command()
def runs(limit: Annotated[int, typer.Option(help="How many runs.")] = 10) -> None:
    """List recent runs with their status and stage timings."""
    frame = _store().list_runs(limit)
    if frame.empty:
        typer.echo("no runs yet")
        return
    cols = ["run_id", "status", "published_at", "window_start", "window_end", "error"]
    typer.echo(frame[cols].to_string(index=False))


@app.command()
def demo(
    accounts: Annotated[int, typer.Option(help="How many accounts to generate.")] = 3000,
    seed: Annotated[int, typer.Option(help="Scenario seed.")] = 0,
    db: Annotated[Path, typer.Option(help="Embedded store for the demo (recreated).")] = Path(
        "sentra-demo.db"
    ),
) -> None:
    """Generate a scenario into an embedded store, run the engine, score it against the truth."""
    from sentra_graph.demo import run_demo

    run_demo(db, n_accounts=accounts, seed=seed, console=_console())


def main() -> None:
    """Entry point: known and unknown failures end as one line on stderr and exit status 1."""
    logging.basicConfig(
        level=os.environ.get("SENTRA_LOG_LEVEL", "WARNING"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        app()
    except Exception as error:  # every failure ends as one line and a non-zero status
        if os.environ.get("SENTRA_DEBUG"):
            raise
        lines = str(error).strip().splitlines()
        reason = lines[0] if lines else type(error).__name__
        typer.echo(f"sentra-graph: error: {reason}", err=True)
        sys.exit(1)
