"""A static HTML report of a run: one self-contained ``index.html`` that any browser opens.

Images are embedded as base64 PNG and the style sheet is inline, so the file can be mailed or
attached to a ticket; it needs no server, no network and no JavaScript.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from importlib import resources
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from sentra_graph.explore import (
    DECISION_COLOURS,
    FarmView,
    RunView,
    draw_farm,
    load_run,
    plot_template_mix,
    plot_timeline,
)

if TYPE_CHECKING:
    from sentra_graph.store import Store

__all__ = ["render_report", "write_report"]

DPI = 90
"""Resolution of embedded figures: sharp on screen, a few hundred KB per farm."""
MAX_FARM_ROWS = 500
"""Rows of the farms table; a run with more farms lists the highest-scored ones."""
MAX_MEMBER_ROWS = 15
MAX_PROMPT_CHARS = 300

_FORMATS: dict[str, Callable[[Any], str]] = {
    "score": lambda v: "" if pd.isna(v) else f"{v:.2f}",
    "strength": lambda v: "" if pd.isna(v) else f"{v:.2f}",
    "seconds": lambda v: "" if pd.isna(v) else f"{v:.2f}",
    "share": lambda v: "" if pd.isna(v) else f"{v:.0%}",
}
"""Fixed formats of some columns, so that 0.9997 reads 1.00 and not 1."""

_WRAPPED = {"top_reasons", "reasons", "prompt", "value"}
"""Columns of long text that may wrap; every other cell stays on one line."""

_MEMBER_COLUMNS = [
    "account_id",
    "strength",
    "score",
    "decision",
    "created_at",
    "org_id",
    "payment_fingerprint",
    "signup_ip",
]


def write_report(
    store: Store, out_dir: str | Path, run_id: str | None = None, *, top_n: int = 5
) -> Path:
    """Write the report of ``run_id`` (default: the latest published run) to ``out_dir``.

    ``top_n`` farms, highest score first, get drawings, timelines and member tables. Returns
    the path of ``index.html`` (written atomically, so a reader never sees half a report).
    """
    page = render_report(load_run(store, run_id), top_n=top_n)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "index.html"
    fd, tmp = tempfile.mkstemp(dir=out, prefix=".index-", suffix=".html")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(page)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path


def render_report(view: RunView, *, top_n: int = 5) -> str:
    """The report of one run as an HTML string."""
    farms = view.farms()
    detailed = farms.head(top_n)["cluster_id"].tolist()
    sections = [
        _run_section(view),
        _decisions_section(view),
        _timings_section(view),
        _farms_section(farms, detailed),
        *(_farm_section(view.farm(cluster_id)) for cluster_id in detailed),
    ]
    start, end = view.window
    subtitle = f"window {_fmt(start)} to {_fmt(end)}, {len(farms)} farms"
    template = Template(
        resources.files("sentra_graph").joinpath("templates/report.html").read_text("utf-8")
    )
    return template.substitute(
        title=html.escape(f"sentra-graph run {view.run_id}"),
        subtitle=html.escape(subtitle),
        body="\n".join(sections),
    )


# ---- building blocks -------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None or (not isinstance(value, list | dict) and pd.isna(value)):
        return ""
    if isinstance(value, dt.datetime | pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, list):
        return "; ".join(str(item) for item in value)
    return str(value)


def _table(
    frame: pd.DataFrame, *, links: dict[str, str] | None = None, link_column: str = ""
) -> str:
    """An escaped HTML table; numbers right-aligned, decisions coloured, optional links."""
    numeric = {c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])}
    head = "".join(
        f'<th class="num">{html.escape(str(c))}</th>'
        if c in numeric
        else f"<th>{html.escape(str(c))}</th>"
        for c in frame.columns
    )
    rows = []
    for record in frame.to_dict("records"):
        cells = []
        for column, value in record.items():
            text = html.escape(_FORMATS.get(column, _fmt)(value))
            if links and column == link_column and value in links:
                text = f'<a href="#{links[value]}">{text}</a>'
            css = "num" if column in numeric else ("wrap" if column in _WRAPPED else "")
            if column == "decision" and value in DECISION_COLOURS:
                css = str(value)
            cells.append(f'<td class="{css}">{text}</td>' if css else f"<td>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _png(draw: Callable[[Axes], Any], size: tuple[float, float]) -> str:
    """Run ``draw`` on a fresh figure (no pyplot state) and return a data: URI of its PNG."""
    figure = Figure(figsize=size, dpi=DPI, layout="constrained")
    draw(figure.subplots())
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(draw: Callable[[Axes], Any], size: tuple[float, float], alt: str) -> str:
    return f'<img src="{_png(draw, size)}" alt="{html.escape(alt)}">'


def _section(title: str, *parts: str, anchor: str = "") -> str:
    ident = f' id="{html.escape(anchor)}"' if anchor else ""
    return f"<section{ident}><h2>{html.escape(title)}</h2>\n" + "\n".join(parts) + "</section>"


def _ordered(items: Iterable[str]) -> str:
    lis = "".join(f"<li>{html.escape(item)}</li>" for item in items)
    return f"<ol>{lis}</ol>" if lis else '<p class="muted">no reason recorded</p>'


def _anchor(cluster_id: str) -> str:
    return "farm-" + "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in cluster_id)


# ---- sections ----------------------------------------------------------------------------------


def _run_section(view: RunView) -> str:
    run = view.run
    rows = [
        ("run", run.get("run_id")),
        ("status", run.get("status")),
        ("window start", run.get("window_start")),
        ("window end", run.get("window_end")),
        ("started", run.get("started_at")),
        ("finished", run.get("finished_at")),
        ("published", run.get("published_at")),
    ]
    rows += [(str(k), v) for k, v in (run.get("stats") or {}).items()]
    meta = _table(pd.DataFrame(rows, columns=["", "value"]).astype({"value": object}))
    params = html.escape(json.dumps(run.get("params") or {}, indent=2, default=str))
    details = f"<details><summary>parameters</summary><pre class='mono'>{params}</pre></details>"
    return _section("Run", meta, details)


def _decisions_section(view: RunView) -> str:
    counts = view.decision_counts()
    frame = pd.DataFrame({"decision": counts.index, "accounts": counts.to_numpy()})

    def draw(ax: Axes) -> None:
        ax.barh(
            frame["decision"], frame["accounts"], color=[DECISION_COLOURS[d] for d in counts.index]
        )
        ax.set_xscale("symlog")
        ax.set_xlabel("accounts (log scale)")
        for y, n in enumerate(frame["accounts"]):
            ax.annotate(f" {n:,}", (max(n, 0), y), va="center", fontsize=9)

    chart = _img(draw, (5.5, 2.0), "accounts per decision")
    return _section(
        "Decisions", f'<div class="grid"><div>{_table(frame)}</div><div>{chart}</div></div>'
    )


def _timings_section(view: RunView) -> str:
    timings = view.timings()
    if timings.empty:
        return _section("Stage timings", '<p class="muted">no timings recorded</p>')
    top = timings["part_of"].isna()
    total = timings.loc[top, "seconds"].sum()

    def draw(ax: Axes) -> None:
        colours = ["#34495e" if t else "#aab7b8" for t in top]
        ax.barh(timings["stage"], timings["seconds"], color=colours)
        ax.invert_yaxis()
        ax.set_xlabel("seconds (grey: parts of the stage above)")

    chart = _img(draw, (5.5, 0.4 + 0.3 * len(timings)), "seconds per stage")
    shown = timings[["stage", "seconds"]].assign(share=timings["seconds"] / total if total else 0.0)
    table = _table(shown)
    return _section(
        f"Stage timings ({total:.1f} s)",
        f'<div class="grid"><div>{table}</div><div>{chart}</div></div>',
    )


def _farms_section(farms: pd.DataFrame, detailed: list[str]) -> str:
    if farms.empty:
        return _section("Farms", '<p class="muted">this run found no farm</p>')
    shown = farms.head(MAX_FARM_ROWS)
    note = (
        f'<p class="muted">the {len(shown)} highest-scored of {len(farms)} farms</p>'
        if len(shown) < len(farms)
        else ""
    )
    links = {cluster_id: _anchor(cluster_id) for cluster_id in detailed}
    return _section(
        f"Farms ({len(farms)})",
        note,
        f'<div id="farms-table">{_table(shown, links=links, link_column="cluster_id")}</div>',
    )


def _farm_section(farm: FarmView) -> str:
    members = farm.members
    columns = [c for c in _MEMBER_COLUMNS if c in members]
    head = (
        f"<p>{farm.size} accounts, score {farm.score:.2f}, decision "
        f'<span class="{html.escape(farm.decision)}">{html.escape(farm.decision)}</span></p>'
    )
    drawing = _img(lambda ax: draw_farm(farm, ax), (8.0, 6.5), f"farm {farm.cluster_id} drawing")
    timeline = _img(
        lambda ax: plot_timeline(farm, ax), (8.0, 4.0), f"farm {farm.cluster_id} timeline"
    )
    mix = _img(
        lambda ax: plot_template_mix(farm, ax), (8.0, 4.0), f"farm {farm.cluster_id} templates"
    )
    prompts = farm.prompts(per_template=2).head(8)
    prompt_table = (
        _table(
            prompts.assign(prompt=prompts["prompt"].str.slice(0, MAX_PROMPT_CHARS))[
                ["template_id", "account_id", "markers", "prompt"]
            ]
        )
        if len(prompts)
        else '<p class="muted">no prompt text stored</p>'
    )
    more = (
        f'<p class="muted">{len(members) - MAX_MEMBER_ROWS} more members not listed</p>'
        if len(members) > MAX_MEMBER_ROWS
        else ""
    )
    return _section(
        f"Farm {farm.cluster_id}",
        head,
        _ordered(farm.reasons),
        f'<div class="grid"><div>{drawing}</div><div>{timeline}{mix}</div></div>',
        "<h3>Members</h3>",
        _table(members[columns].head(MAX_MEMBER_ROWS)),
        more,
        "<h3>Example prompts</h3>",
        prompt_table,
        anchor=_anchor(farm.cluster_id),
    )
