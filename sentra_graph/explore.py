"""Explore a run's farms: tables of farms and members, their shared entities and drawings.

:func:`load_run` is the only function that takes a store; everything else works on a
:class:`RunView` / :class:`FarmView` or on plain DataFrames, so the plots can be reused on any
frame with the right columns.

>>> requests = pd.DataFrame({
...     "account_id": ["a", "b", "c"], "ip": ["10.0.0.1", "10.0.0.1", "10.0.0.9"],
...     "tls_fingerprint": [None, None, None], "user_agent": [None, None, None],
...     "template_id": [4, 4, -1]})
>>> edges = shared_entities(pd.DataFrame(columns=["account_id"]), requests)
>>> edges[["kind", "entity"]].drop_duplicates().values.tolist()
[['ip', '10.0.0.1'], ['prefix', '10.0.0.0/24'], ['template', 'T4']]
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

if not os.environ.get("MPLBACKEND") and not os.environ.get("DISPLAY"):
    matplotlib.use("Agg")  # headless: render to images; notebooks set MPLBACKEND themselves

import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from sentra_graph.features.markers import MARKER_NAMES  # noqa: E402
from sentra_graph.graph.entities import ip_prefix  # noqa: E402

if TYPE_CHECKING:
    from sentra_graph.store import Store

__all__ = [
    "DECISION_COLOURS",
    "ENTITY_COLOURS",
    "FarmView",
    "NotebookData",
    "RunView",
    "draw_farm",
    "device_labels",
    "evidence_frames",
    "load_run",
    "marker_names",
    "notebook_store",
    "plot_template_mix",
    "plot_timeline",
    "shared_entities",
    "threshold_sweep",
]

ENTITY_COLOURS = {
    "card": "#8e44ad",
    "signup_ip": "#1f4e79",
    "ip": "#3498db",
    "prefix": "#16a085",
    "device": "#27ae60",
    "template": "#f39c12",
}
"""Node colour of each kind of shared entity in :func:`draw_farm` (also its legend order)."""

DECISION_COLOURS = {"block": "#c0392b", "review": "#e67e22", "allow": "#7f8c8d"}
"""Node colour of member accounts by decision."""

NO_TEMPLATE = -1
"""Template id of a prompt that fits no template (HDBSCAN noise)."""
NO_PROMPT = -2
"""Template id of a request with nothing to embed."""

_TIME_BINS = [
    pd.Timedelta(minutes=1),
    pd.Timedelta(minutes=5),
    pd.Timedelta(minutes=15),
    pd.Timedelta(minutes=30),
    pd.Timedelta(hours=1),
    pd.Timedelta(hours=3),
    pd.Timedelta(hours=6),
    pd.Timedelta(hours=12),
    pd.Timedelta(days=1),
]


# ---- pure helpers ------------------------------------------------------------------------


def device_labels(requests: pd.DataFrame) -> pd.Series:
    """The device of each request as the engine names it: ``TLS fingerprint|user agent``.

    A missing half is written ``-``; a request with neither has no device (None).

    >>> device_labels(pd.DataFrame({"tls_fingerprint": ["t1", None, None],
    ...                             "user_agent": ["curl/8", "curl/8", None]})).tolist()
    ['t1|curl/8', '-|curl/8', None]
    """
    tls = requests["tls_fingerprint"].astype(object)
    agent = requests["user_agent"].astype(object)
    labels = tls.where(tls.notna(), "-") + "|" + agent.where(agent.notna(), "-")
    return labels.where(tls.notna() | agent.notna(), None)


def marker_names(markers: int) -> str:
    """The prompt markers set in a bit field, comma-joined.

    >>> marker_names(3)
    'chain-of-thought elicitation, rubric grading'
    """
    return ", ".join(name for bit, name in MARKER_NAMES.items() if int(markers) & bit)


def _template_label(template_id: Any) -> str:
    if template_id is None or pd.isna(template_id):
        return "unassigned"
    template_id = int(template_id)
    if template_id == NO_TEMPLATE:
        return "no template"
    if template_id == NO_PROMPT:
        return "no prompt"
    return f"T{template_id}"


def shared_entities(
    accounts: pd.DataFrame, requests: pd.DataFrame, min_accounts: int = 2
) -> pd.DataFrame:
    """Edges account -> entity for entities that at least ``min_accounts`` accounts share.

    Entities are cards and sign-up IPs (from ``accounts``), request IPs, their prefixes,
    devices (:func:`device_labels`) and prompt templates (from ``requests``). Missing
    columns are skipped. Columns: kind, entity, account_id, requests (0 for account
    attributes), accounts (how many of the given accounts share the entity).
    """
    parts = []
    for column, kind in (("payment_fingerprint", "card"), ("signup_ip", "signup_ip")):
        if column in accounts and len(accounts):
            part = accounts[["account_id", column]].dropna()
            parts.append(
                pd.DataFrame(
                    {
                        "kind": kind,
                        "entity": part[column].astype(str),
                        "account_id": part.account_id,
                    }
                ).assign(requests=0)
            )
    if len(requests):
        has_device = {"tls_fingerprint", "user_agent"} <= set(requests)
        views = {
            "ip": requests.get("ip"),
            "prefix": ip_prefix(requests["ip"]) if "ip" in requests else None,
            "device": device_labels(requests) if has_device else None,
        }
        if "template_id" in requests:
            tid = pd.to_numeric(requests["template_id"], errors="coerce")
            views["template"] = tid.where(tid >= 0).map(_template_label, na_action="ignore")
        for kind, values in views.items():
            if values is None:
                continue
            frame = pd.DataFrame(
                {"entity": values.to_numpy(), "account_id": requests["account_id"].to_numpy()}
            ).dropna()
            counts = frame.groupby(["entity", "account_id"]).size().rename("requests")
            parts.append(counts.reset_index().assign(kind=kind))
    columns = ["kind", "entity", "account_id", "requests", "accounts"]
    if not parts:
        return pd.DataFrame(columns=columns)
    edges = pd.concat(parts, ignore_index=True)
    edges["entity"] = edges["entity"].astype(str)
    edges = edges.groupby(["kind", "entity", "account_id"], as_index=False)["requests"].sum()
    edges["accounts"] = edges.groupby(["kind", "entity"])["account_id"].transform("nunique")
    edges = edges[edges["accounts"] >= min_accounts]
    order = {kind: i for i, kind in enumerate(ENTITY_COLOURS)}
    edges = edges.assign(_k=edges["kind"].map(order))
    edges = edges.sort_values(["_k", "accounts", "entity", "account_id"], ascending=[1, 0, 1, 1])
    return edges[columns].reset_index(drop=True)


def evidence_frames(evidence: dict | None) -> dict[str, pd.DataFrame]:
    """A stored evidence dict as tidy DataFrames, named by their (dotted) path.

    A list of records becomes a frame; a list of scalars a one-column frame; a mapping whose
    values are all records a frame keyed by ``key``; the scalars of any other mapping a
    (key, value) frame, its lists and mappings their own frames. Top-level scalars go to
    ``summary``. Unknown shapes are kept, never dropped, so the engine may add keys freely.

    >>> frames = evidence_frames({"ips": {"shared": 3, "top": [{"ip": "1.2.3.4", "accounts": 9}]},
    ...                           "size": 12})
    >>> sorted(frames), frames["ips.top"].columns.tolist(), frames["ips"].values.tolist()
    (['ips', 'ips.top', 'summary'], ['ip', 'accounts'], [['shared', 3]])
    """
    out: dict[str, pd.DataFrame] = {}

    def visit(name: str, value: Any) -> None:
        if isinstance(value, list):
            if value and all(isinstance(item, dict) for item in value):
                out[name] = pd.DataFrame(value)
            else:
                out[name] = pd.DataFrame({name.rsplit(".", 1)[-1]: value})
        elif value and all(isinstance(item, dict) for item in value.values()):
            out[name] = pd.DataFrame.from_dict(value, orient="index").rename_axis("key")
            out[name] = out[name].reset_index()
        else:
            nested = {k: v for k, v in value.items() if isinstance(v, list | dict)}
            scalars = [(k, v) for k, v in value.items() if k not in nested]
            if scalars or not nested:
                out[name] = pd.DataFrame(scalars, columns=["key", "value"])
            for key, item in nested.items():
                visit(f"{name}.{key}", item)

    summary = [(k, v) for k, v in (evidence or {}).items() if not isinstance(v, list | dict)]
    for key, value in (evidence or {}).items():
        if isinstance(value, list | dict):
            visit(str(key), value)
    if summary:
        out["summary"] = pd.DataFrame(summary, columns=["name", "value"])
    return out


# ---- the views -----------------------------------------------------------------------------


@dataclass
class RunView:
    """One run of a store: its metadata, farms and decisions."""

    store: Store
    run: dict

    @property
    def run_id(self) -> str:
        return str(self.run["run_id"])

    @property
    def window(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        return self.run.get("window_start"), self.run.get("window_end")

    @cached_property
    def _clusters(self) -> pd.DataFrame:
        return self.store.run_clusters(self.run_id)

    @cached_property
    def _counts(self) -> pd.DataFrame:
        return self.store.decision_counts(self.run_id)

    def farms(self) -> pd.DataFrame:
        """The run's farms, highest score first.

        Columns: cluster_id, size, score, decision, blocked, reviewed (members decided so),
        top_reasons (the farm's first three reasons).
        """
        clusters = self._clusters
        counts = self._counts.pivot_table(
            index="cluster_id", columns="decision", values="accounts", aggfunc="sum", fill_value=0
        )
        frame = clusters[["cluster_id", "size", "score", "decision"]].copy()
        for decision, name in (("block", "blocked"), ("review", "reviewed")):
            column = counts[decision] if decision in counts else pd.Series(dtype=int)
            frame[name] = frame["cluster_id"].map(column).fillna(0).astype(int)
        frame["top_reasons"] = clusters["reasons"].map(lambda r: "; ".join((r or [])[:3]))
        return frame.reset_index(drop=True)

    def decision_counts(self) -> pd.Series:
        """Accounts per decision (allow, review, block) in this run."""
        counts = self._counts.groupby("decision")["accounts"].sum()
        return counts.reindex(["allow", "review", "block"], fill_value=0).astype(int)

    def timings(self) -> pd.DataFrame:
        """Seconds per stage of the run: stage, seconds, part_of (the enclosing stage of a
        sub-stage such as ``detect.graph``, None for a top-level stage)."""
        timings = self.run.get("timings") or {}
        flat = pd.json_normalize(timings).iloc[0] if timings else pd.Series(dtype=float)
        stages = flat.index.astype(str)
        parents = stages.str.rsplit(".", n=1).str[0]
        known = set(stages)
        part_of = [
            p if p != s and p in known else None for s, p in zip(stages, parents, strict=True)
        ]
        seconds = pd.to_numeric(flat, errors="coerce").to_numpy()
        return pd.DataFrame({"stage": stages, "seconds": seconds, "part_of": part_of})

    def farm(self, cluster_id: str) -> FarmView:
        """One farm of the run; ``KeyError`` if the run has no such farm."""
        row = self._clusters[self._clusters["cluster_id"] == cluster_id]
        if row.empty:
            raise KeyError(f"run {self.run_id} has no farm {cluster_id!r}")
        return FarmView(self, row.iloc[0].to_dict())


@dataclass
class FarmView:
    """One farm of a run: members, stored evidence, requests and shared entities."""

    run: RunView
    cluster: dict
    _requests: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def cluster_id(self) -> str:
        return str(self.cluster["cluster_id"])

    @property
    def size(self) -> int:
        return int(self.cluster["size"])

    @property
    def score(self) -> float:
        return float(self.cluster["score"])

    @property
    def decision(self) -> str:
        return str(self.cluster["decision"])

    @property
    def reasons(self) -> list[str]:
        return list(self.cluster.get("reasons") or [])

    @cached_property
    def members(self) -> pd.DataFrame:
        """Members, strongest first: account_id, strength, score, decision, reasons and the
        account's attributes (org_id, created_at, payment_fingerprint, signup_ip, ...)."""
        store, run_id = self.run.store, self.run.run_id
        members = store.run_memberships(run_id, self.cluster_id)[["account_id", "strength"]]
        ids = members["account_id"].tolist()
        decisions = store.decision_rows(run_id, ids)[["account_id", "score", "decision", "reasons"]]
        accounts = store.account_rows(ids)
        frame = members.merge(decisions, on="account_id", how="left").merge(
            accounts, on="account_id", how="left"
        )
        frame = frame.sort_values(["strength", "account_id"], ascending=[False, True])
        return frame.reset_index(drop=True)

    @cached_property
    def evidence(self) -> dict[str, pd.DataFrame]:
        """The engine's evidence for the farm, as tidy DataFrames (see :func:`evidence_frames`)."""
        return evidence_frames(self.cluster.get("evidence"))

    def requests(self) -> pd.DataFrame:
        """The members' requests in the run window (no prompt text), sorted by ts."""
        if self._requests is None:
            start, end = self.run.window
            self._requests = self.run.store.account_requests(self.members["account_id"], start, end)
        return self._requests

    def shared(self, min_accounts: int = 2) -> pd.DataFrame:
        """Entities the members share (see :func:`shared_entities`)."""
        return shared_entities(self.members, self.requests(), min_accounts)

    def prompts(self, per_template: int = 3, templates: int = 6) -> pd.DataFrame:
        """Example prompts of the farm's ``templates`` most used prompt templates.

        The earliest ``per_template`` prompts of each, most used template first; columns
        template_id, ts, account_id, request_id, prompt, markers (named).
        """
        tid = pd.to_numeric(self.requests()["template_id"], errors="coerce")
        usage = tid[tid >= 0].astype(int).value_counts().head(templates)
        start, end = self.run.window
        frame = self.run.store.prompt_examples(
            account_ids=self.members["account_id"],
            template_ids=usage.index.tolist(),
            start=start,
            end=end,
            per_template=per_template,
        )
        rank = frame["template_id"].map({t: i for i, t in enumerate(usage.index)})
        frame = frame.assign(_rank=rank).sort_values(["_rank", "ts"]).drop(columns="_rank")
        frame["markers"] = frame["markers"].map(marker_names)
        return frame.reset_index(drop=True)


def load_run(store: Store, run_id: str | None = None) -> RunView:
    """A view of ``run_id``, or of the latest published run by default.

    Raises ``LookupError`` naming the fix when there is no such run.
    """
    run = store.get_run(run_id) if run_id else store.latest_published_run()
    if run is None:
        what = f"no run {run_id!r}" if run_id else "no published run yet"
        raise LookupError(f"{what} in the store: run `sentra-graph run` first")
    return RunView(store, run)


# ---- thresholds and notebook data ---------------------------------------------------------


def threshold_sweep(
    scores: pd.DataFrame,
    truth: pd.DataFrame,
    thresholds: Any = None,
    positive: str = "farm",
) -> pd.DataFrame:
    """Confusion counts, precision and recall of flagging ``score >= threshold``.

    ``scores``: account_id, score (an account the run did not score counts as 0);
    ``truth``: account_id, role, where ``role == positive`` marks the accounts that should be
    flagged; only accounts in ``truth`` are counted. Columns: threshold, flagged, tp, fp, fn,
    tn, precision (NaN when nothing is flagged), recall, f1, and ``flagged_<role>`` per role.

    >>> truth = pd.DataFrame({"account_id": list("abcd"),
    ...                       "role": ["farm", "farm", "legit", "lookalike"]})
    >>> scores = pd.DataFrame({"account_id": list("abc"), "score": [0.9, 0.4, 0.6]})
    >>> sweep = threshold_sweep(scores, truth, [0.5])
    >>> sweep[["tp", "fp", "fn", "tn", "precision", "recall", "flagged_lookalike"]].values.tolist()
    [[1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.0]]
    """
    grid = np.round(np.linspace(0, 1, 101), 2) if thresholds is None else np.asarray(thresholds)
    score = truth["account_id"].map(scores.set_index("account_id")["score"]).fillna(0.0)
    out = pd.DataFrame({"threshold": grid})
    for role in sorted(truth["role"].unique()):
        ranked = np.sort(score[truth["role"] == role].to_numpy())
        out[f"flagged_{role}"] = len(ranked) - np.searchsorted(ranked, grid, side="left")
    is_pos = (truth["role"] == positive).to_numpy()
    n_pos, n_neg = int(is_pos.sum()), int((~is_pos).sum())
    pos, neg = np.sort(score[is_pos].to_numpy()), np.sort(score[~is_pos].to_numpy())
    out["tp"] = (n_pos - np.searchsorted(pos, grid, side="left")).astype(float)
    out["fp"] = (n_neg - np.searchsorted(neg, grid, side="left")).astype(float)
    out["fn"], out["tn"] = n_pos - out["tp"], n_neg - out["fp"]
    out["flagged"] = out["tp"] + out["fp"]
    out["precision"] = out["tp"] / out["flagged"].where(out["flagged"] > 0)
    out["recall"] = out["tp"] / n_pos if n_pos else np.nan
    out["f1"] = 2 * out["precision"] * out["recall"] / (out["precision"] + out["recall"])
    first = ["threshold", "flagged", "tp", "fp", "fn", "tn", "precision", "recall", "f1"]
    return out[first + [c for c in out if c.startswith("flagged_")]]


@dataclass
class NotebookData:
    """The store a notebook explores, and the ground truth to judge it by (None if unknown).

    ``truth``: account_id, role (farm / lookalike / legit), and kind and group when generated.
    """

    store: Store
    truth: pd.DataFrame | None
    url: str
    generated: bool


def notebook_store(n_accounts: int = 1500, *, days: int = 7, seed: int = 0) -> NotebookData:
    """The store of ``SENTRA_DATABASE_URL``, or a small generated scenario run into SQLite.

    With ``SENTRA_DATABASE_URL`` set, the truth is the analysts' latest feedback (label farm
    or legit), if any. Otherwise a scenario of ``n_accounts`` is generated, ingested and run
    into a SQLite file under ``SENTRA_DEMO_DIR`` (reused when it already holds that scenario's
    published run, so several notebooks share one) or a fresh temporary directory.
    """
    from sentra_graph.store import open_store

    url = os.environ.get("SENTRA_DATABASE_URL")
    if url:
        store = open_store(url)
        labels = store.feedback_labels()
        truth = labels.rename(columns={"label": "role"})[["account_id", "role"]]
        return NotebookData(store, truth if len(truth) else None, url, generated=False)
    folder = Path(os.environ.get("SENTRA_DEMO_DIR") or tempfile.mkdtemp(prefix="sentra-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"demo-{n_accounts}-{days}d-seed{seed}"
    url = f"sqlite:///{stem.with_suffix('.db').resolve()}"
    truth_path = stem.with_suffix(".truth.csv")
    store = open_store(url)
    if truth_path.exists() and store.schema_revision() and store.latest_published_run():
        return NotebookData(store, pd.read_csv(truth_path), url, generated=True)
    from sentra_graph.config import load_settings
    from sentra_graph.ingest import ingest_frame
    from sentra_graph.pipeline import run_detection
    from sentra_graph.synth import generate

    store.init()
    scenario = generate(n_accounts=n_accounts, days=days, seed=seed)
    ingest_frame(store, "accounts", scenario.accounts, source="<notebook>")
    ingest_frame(store, "requests", scenario.requests, source="<notebook>")
    run_detection(store, load_settings(database_url=url), window_end=scenario.window_end)
    scenario.truth.to_csv(truth_path, index=False)
    return NotebookData(store, scenario.truth, url, generated=True)


# ---- plots -----------------------------------------------------------------------------------


def _axes(ax: Axes | None, size: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax


def _short(text: str, width: int = 14) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _decision_colour(decision: str | None) -> str:
    return DECISION_COLOURS.get(decision or "", "#bdc3c7")


def _entity_label(kind: str, entity: str) -> str:
    """A short node label; a device shows its user agent, which tells devices apart best.

    >>> _entity_label("device", "t13d1614h2_10699a37f644|python-httpx/0.27.2")
    't13d16…|python-httpx/0…'
    """
    if kind == "device" and "|" in entity:
        tls, agent = entity.split("|", 1)
        return f"{_short(tls, 7)}|{_short(agent, 15)}"
    return _short(entity, 18)


def _bounded(
    edges: pd.DataFrame, max_entities: int, max_accounts: int, keep: str | None = None
) -> pd.DataFrame:
    """The most shared entities, taken round-robin across kinds, and their best-linked accounts
    (``keep`` first)."""
    entities = edges.drop_duplicates(["kind", "entity"]).copy()
    entities["rank"] = entities.groupby("kind").cumcount()
    entities = entities.sort_values(["rank", "accounts"], ascending=[True, False])
    top = entities.head(max_entities)[["kind", "entity"]]
    edges = edges.merge(top, on=["kind", "entity"])
    degree = edges.groupby("account_id").size().sort_values(ascending=False, kind="stable")
    chosen = ([keep] if keep in degree.index else []) + [a for a in degree.index if a != keep]
    return edges[edges["account_id"].isin(chosen[:max_accounts])]


def _ring_layout(graph: nx.Graph) -> dict:
    """Entities evenly on an outer ring grouped by kind, accounts on an inner ring.

    Each account sits at the angle its entities pull it to, the more specific ones (shared by
    fewer accounts) pulling harder, so sub-groups (one card each, say) face their entity; the
    accounts are then spread evenly in that order so that none overlap.
    """
    order = {kind: i for i, kind in enumerate(ENTITY_COLOURS)}
    entities = sorted((n for n in graph if n[0] != "account"), key=lambda n: (order[n[0]], n[1]))
    angles = np.linspace(0, 2 * np.pi, num=len(entities), endpoint=False) + np.pi / 2
    angle_of = dict(zip(entities, angles, strict=True))
    pos = {n: np.array([np.cos(a), np.sin(a)]) for n, a in angle_of.items()}
    pull = {}
    for node in graph:
        if node[0] == "account":
            vector = sum(pos[e] / graph.degree(e) for e in graph[node])
            pull[node] = (np.arctan2(vector[1], vector[0]) - np.pi / 2) % (2 * np.pi)
    accounts = sorted(pull, key=lambda n: (pull[n], n[1]))
    inner = np.pi / 2 + np.linspace(0, 2 * np.pi, num=len(accounts), endpoint=False)
    if accounts:
        inner += pull[accounts[0]]
    for node, angle in zip(accounts, inner, strict=True):
        pos[node] = 0.55 * np.array([np.cos(angle), np.sin(angle)])
    return pos


def draw_farm(
    farm: FarmView | pd.DataFrame,
    ax: Axes | None = None,
    *,
    decisions: pd.DataFrame | None = None,
    max_entities: int = 30,
    max_accounts: int = 40,
    highlight: str | None = None,
) -> Axes:
    """Draw the bipartite neighbourhood of a farm: member accounts and the entities they share.

    ``farm`` is a :class:`FarmView` or an edge frame from :func:`shared_entities`; accounts are
    coloured by decision (``decisions``: account_id, decision; taken from the farm's members
    when ``farm`` is a view), entities by kind. At most ``max_entities`` entities (the most
    shared of each kind first) and ``max_accounts`` accounts are drawn; the ``highlight``
    account, if any, is always drawn, larger and ringed.
    """
    if isinstance(farm, FarmView):
        edges, decisions, title = farm.shared(), farm.members, f"farm {farm.cluster_id}"
    else:
        edges, title = farm, "shared entities"
    ax = _axes(ax, (9, 7))
    ax.set_axis_off()
    if edges.empty:
        ax.set_title(f"{title}: no shared entity")
        return ax
    shown = _bounded(edges, max_entities, max_accounts, highlight)
    graph = nx.Graph()
    for row in shown.itertuples(index=False):
        graph.add_edge(("account", row.account_id), (row.kind, row.entity))
    pos = _ring_layout(graph)
    decision_of = (
        dict(zip(decisions["account_id"], decisions["decision"], strict=True))
        if decisions is not None
        else {}
    )
    nx.draw_networkx_edges(graph, pos, ax=ax, alpha=0.25, width=0.8)
    accounts = [n for n in graph if n[0] == "account"]
    nx.draw_networkx_nodes(
        graph,
        pos,
        nodelist=accounts,
        ax=ax,
        node_size=60,
        node_color=[_decision_colour(decision_of.get(n[1])) for n in accounts],
    )
    if ("account", highlight) in graph:
        nx.draw_networkx_nodes(
            graph,
            pos,
            nodelist=[("account", highlight)],
            ax=ax,
            node_size=220,
            node_color=_decision_colour(decision_of.get(highlight)),
            edgecolors="black",
            linewidths=2.0,
        )
    for kind, colour in ENTITY_COLOURS.items():
        nodes = [n for n in graph if n[0] == kind]
        if nodes:
            sizes = [80 + 25 * graph.degree(n) for n in nodes]
            nx.draw_networkx_nodes(
                graph,
                pos,
                nodelist=nodes,
                ax=ax,
                node_shape="s",
                node_size=sizes,
                node_color=colour,
            )
    labels = {n: _entity_label(*n) for n in graph if n[0] != "account"}
    if len(accounts) <= 15:
        labels.update({n: _short(n[1], 10) for n in accounts})
    nx.draw_networkx_labels(graph, pos, labels=labels, ax=ax, font_size=7)
    handles = [
        Line2D([], [], marker="o", ls="", color=c, label=f"account ({d})")
        for d, c in DECISION_COLOURS.items()
        if d in {decision_of.get(n[1]) for n in accounts}
    ] + [
        Line2D([], [], marker="s", ls="", color=ENTITY_COLOURS[k], label=k.replace("_", " "))
        for k in ENTITY_COLOURS
        if k in set(shown["kind"])
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    n_entities = edges.drop_duplicates(["kind", "entity"]).shape[0]
    n_shown = graph.number_of_nodes() - len(accounts)
    ax.set_title(
        f"{title}: {edges['account_id'].nunique()} accounts, {n_entities} shared entities"
        + (
            f" (showing {len(accounts)} accounts, {n_shown} entities)"
            if n_shown < n_entities or len(accounts) < edges["account_id"].nunique()
            else ""
        )
    )
    return ax


def _requests_of(farm: FarmView | pd.DataFrame) -> tuple[pd.DataFrame, str]:
    if isinstance(farm, FarmView):
        return farm.requests(), f"farm {farm.cluster_id}"
    return farm, "accounts"


def _bin_width(span: pd.Timedelta, max_bins: int) -> pd.Timedelta:
    for width in _TIME_BINS:
        if span / width <= max_bins:
            return width
    return _TIME_BINS[-1]


def plot_timeline(
    farm: FarmView | pd.DataFrame,
    ax: Axes | None = None,
    *,
    max_accounts: int = 60,
    max_bins: int = 160,
) -> Axes:
    """Heatmap of requests per account (rows) and time bin (columns).

    Synchronised bursts show as bright vertical stripes across many rows. ``farm`` is a
    :class:`FarmView` or a requests frame (ts, account_id). Rows are the ``max_accounts`` most
    active accounts, ordered by first request; the bin width adapts to the span.
    """
    requests, title = _requests_of(farm)
    ax = _axes(ax, (10, 5))
    if requests.empty:
        ax.set_title(f"{title}: no request in the window")
        ax.set_axis_off()
        return ax
    ts = pd.to_datetime(requests["ts"], utc=True)
    active = requests["account_id"].value_counts().index[:max_accounts]
    mask = requests["account_id"].isin(active).to_numpy()
    ts, ids = ts[mask], requests["account_id"][mask]
    start = ts.min().floor("min")
    width = _bin_width(ts.max() - start + pd.Timedelta(minutes=1), max_bins)
    bins = ((ts - start) // width).astype(int).to_numpy()
    first = ts.groupby(ids.to_numpy()).min().sort_values(kind="stable")
    row = pd.Series(np.arange(len(first)), index=first.index)
    counts = np.zeros((len(first), bins.max() + 1))
    np.add.at(counts, (row.loc[ids].to_numpy(), bins), 1)
    image = ax.imshow(
        np.log1p(counts), aspect="auto", interpolation="nearest", cmap="magma_r", origin="upper"
    )
    ax.figure.colorbar(image, ax=ax, label="log(1 + requests)", fraction=0.03, pad=0.01)
    ticks = np.linspace(0, counts.shape[1] - 1, num=min(6, counts.shape[1])).round().astype(int)
    ax.set_xticks(ticks)
    ax.set_xticklabels([(start + width * int(i)).strftime("%m-%d %H:%M") for i in ticks])
    if len(first) <= 30:
        ax.set_yticks(range(len(first)))
        ax.set_yticklabels([_short(str(a), 16) for a in first.index], fontsize=7)
    else:
        ax.set_yticks([])
    ax.set_ylabel(f"{len(first)} accounts (by first request)")
    ax.set_xlabel(f"time (UTC), bins of {_format_width(width)}")
    ax.set_title(f"{title}: activity over time")
    return ax


def _format_width(width: pd.Timedelta) -> str:
    minutes = int(width.total_seconds() // 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h"


def plot_template_mix(
    farm: FarmView | pd.DataFrame,
    ax: Axes | None = None,
    *,
    top: int = 8,
    max_accounts: int = 30,
) -> Axes:
    """Stacked bars of each account's share of requests per prompt template.

    A farm running one distillation script shows the same few templates in every bar.
    ``farm`` is a :class:`FarmView` or a requests frame (account_id, template_id); the ``top``
    templates of the farm get their own colour, the rest is "other".
    """
    requests, title = _requests_of(farm)
    ax = _axes(ax, (10, 5))
    if requests.empty:
        ax.set_title(f"{title}: no request in the window")
        ax.set_axis_off()
        return ax
    labels = requests["template_id"].map(_template_label)
    named = labels[~labels.isin(["no template", "no prompt", "unassigned"])]
    top_labels = named.value_counts().index[:top].tolist()
    labels = labels.where(labels.isin(top_labels + ["no template", "no prompt", "unassigned"]))
    labels = labels.fillna("other")
    active = requests["account_id"].value_counts().index[:max_accounts]
    keep = requests["account_id"].isin(active)
    table = pd.crosstab(requests["account_id"][keep], labels[keep], normalize="index")
    order = [
        c for c in top_labels + ["other", "no template", "no prompt", "unassigned"] if c in table
    ]
    table = table[order].sort_values(order[0], ascending=False)
    palette = plt.get_cmap("tab10")
    greys = {"other": "#95a5a6", "no template": "#d5d8dc", "no prompt": "#ecf0f1"}
    colours = [
        greys.get(c, "#f8f9f9" if c == "unassigned" else palette(i % 10))
        for i, c in enumerate(order)
    ]
    rows = np.arange(len(table))
    left = np.zeros(len(table))
    for column, colour in zip(order, colours, strict=True):
        ax.barh(rows, table[column], left=left, height=0.85, color=colour, label=column)
        left += table[column].to_numpy()
    ax.set_yticks(rows, [_short(str(a), 18) for a in table.index], fontsize=7)
    ax.set_ylim(len(table) - 0.5, -0.5)
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the account's requests")
    ax.legend(title="template", fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_title(f"{title}: prompt templates per account")
    return ax
