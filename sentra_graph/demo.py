"""``sentra-graph demo``: a generated scenario, one run, and how it fared against the truth."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from sentra_graph.config import load_settings
from sentra_graph.evaluate import evaluate
from sentra_graph.ingest import ingest_frame
from sentra_graph.pipeline import RunSummary, run_detection
from sentra_graph.store import Store, open_store
from sentra_graph.synth import generate


def run_demo(db: Path, *, n_accounts: int = 3000, seed: int = 0, console: Console) -> pd.DataFrame:
    """Generate a scenario into a fresh embedded store at ``db``, run, print and return the
    evaluation table (one row per role and kind)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{db.resolve()}"
    store = open_store(url)
    store.init()
    with console.status(f"generating {n_accounts} accounts (seed {seed})"):
        scenario = generate(n_accounts=n_accounts, seed=seed)
    with console.status("ingesting"):
        for kind, frame in (("accounts", scenario.accounts), ("requests", scenario.requests)):
            console.print(ingest_frame(store, kind, frame).line())
    settings = load_settings(database_url=url)
    with console.status("detection run") as status:
        summary = run_detection(
            store, settings, progress=lambda stage: status.update(f"detection run: {stage}")
        )
    console.print(summary.line())
    evaluation = evaluate(store.current_decisions(), scenario.truth)
    _print_farms(store, summary, scenario.truth, console)
    _print_evaluation(evaluation, console)
    console.print(
        f"\nThe demo store is {db}: try `SENTRA_DATABASE_URL={url} sentra-graph explain ACCOUNT`"
        " or `... sentra-graph report --out report`."
    )
    return evaluation


def _print_farms(store: Store, summary: RunSummary, truth: pd.DataFrame, console: Console) -> None:
    clusters = store.run_clusters(summary.run_id)
    members = store.run_memberships(summary.run_id).merge(truth, on="account_id", how="left")
    flagged = clusters[clusters["decision"] != "allow"]
    table = Table(title=f"Farms found: {len(flagged)} flagged of {len(clusters)} candidate groups")
    for column in ("farm", "size", "score", "decision", "truth (kinds)", "top reason"):
        table.add_column(column)
    for row in flagged.head(25).itertuples():
        kinds = members.loc[members["cluster_id"] == row.cluster_id, "kind"].value_counts()
        table.add_row(
            row.cluster_id,
            str(row.size),
            f"{row.score:.2f}",
            row.decision,
            ", ".join(f"{k} {v}" for k, v in kinds.items()),
            (row.reasons or [""])[0],
        )
    console.print(table)


_EVALUATION_COLUMNS = {
    "role": "role",
    "kind": "kind",
    "accounts": "n",
    "blocked": "block",
    "review_or_block": "rev+blk",
    "precision_block": "prec@blk",
    "recall_block": "rec@blk",
    "recall_review": "rec@rev",
}


def _print_evaluation(evaluation: pd.DataFrame, console: Console) -> None:
    table = Table(title="Against the generator's truth (farms found, look-alikes spared)")
    for header in _EVALUATION_COLUMNS.values():
        table.add_column(header, justify="left" if header in ("role", "kind") else "right")
    for row in evaluation[list(_EVALUATION_COLUMNS)].itertuples(index=False):
        table.add_row(
            *("" if v != v else f"{v:.3f}" if isinstance(v, float) else str(v) for v in row)
        )
    console.print(table)
