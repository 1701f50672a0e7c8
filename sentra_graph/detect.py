"""The engine's pure entry point: a window of accounts and requests in, farms and decisions out.

Nothing here touches a database; :mod:`sentra_graph.pipeline` reads the window from the store,
calls :func:`detect` and writes the :class:`Detection` back. The stages, in order:

1. ``prepare``: integer-code the window (accounts, org units, IPs, prefixes, devices);
2. ``features``: per-account behaviour, template/marker aggregates, activity histograms;
3. ``graph``: the account <-> entity incidence and its weighted account projection;
4. ``lockstep``: groups of accounts active in the same short time windows (HDBSCAN);
5. ``cluster``: Louvain communities and connected components of the thresholded projection,
   each joined by lockstep groups: the candidate farms at two levels;
6. ``evidence``: per-member channel evidence (payment, network, device, content, timing,
   sign-up), always against peers of *other* org units; the level that scores higher is kept;
7. ``score``: farm and account scores, feedback and allow-lists, decisions;
8. ``explain``: reasons and evidence dictionaries.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sentra_graph.cluster.candidates import choose_level, farm_ids, merge_lockstep, small_to_none
from sentra_graph.cluster.community import communities, components
from sentra_graph.cluster.lockstep import activity_vectors, baseline_cosine, lockstep_groups
from sentra_graph.features.behaviour import (
    activity_matrix,
    behaviour_features,
    template_features,
    template_marker_rates,
)
from sentra_graph.graph.projection import project
from sentra_graph.graph.window import EncodedWindow, build_incidence, encode_window, only_from_ips
from sentra_graph.params import EngineParams
from sentra_graph.risk.decisions import apply_analysts
from sentra_graph.risk.evidence import FarmInputs, entity_sharing, member_channels
from sentra_graph.risk.feedback import allowlist_sets, allowlisted_reasons, farm_pull, latest_labels
from sentra_graph.risk.frames import (
    CLUSTER_COLUMNS,
    DECISION_COLUMNS,
    MEMBERSHIP_COLUMNS,
    Scored,
    build_frames,
)
from sentra_graph.risk.model import label_vector, supervised_scores
from sentra_graph.risk.reasons import Explainer, ReasonInputs
from sentra_graph.risk.scoring import DECISIONS, account_scores, behaviour_score, farm_scores

__all__ = ["DECISIONS", "DetectContext", "Detection", "detect"]


@dataclass(frozen=True)
class DetectContext:
    """What a run knows besides the window itself.

    feedback: latest analyst label per account (columns account_id, label in {farm, legit}).
    allowlist: columns kind in {account, org, ip}, value.
    previous_memberships: the last published run's memberships (account_id, cluster_id), used
        to keep farm ids stable from run to run.
    block_threshold, review_threshold: score cut-offs for the decisions.
    window_end: the end of the window (the run's notion of "now").
    """

    feedback: pd.DataFrame
    allowlist: pd.DataFrame
    previous_memberships: pd.DataFrame
    block_threshold: float
    review_threshold: float
    window_end: dt.datetime
    seed: int = 0


@dataclass
class Detection:
    """A run's results.

    clusters: cluster_id, size, score, decision, reasons (list[str]), evidence (dict).
    memberships: account_id, cluster_id, strength in [0, 1].
    decisions: account_id, score in [0, 1], decision, cluster_id (None if none),
        reasons (list[str], most important first), evidence (dict or None).
    timings: seconds per stage; stats: counts worth recording with the run.
    """

    clusters: pd.DataFrame
    memberships: pd.DataFrame
    decisions: pd.DataFrame
    timings: dict[str, float] = field(default_factory=dict)
    stats: dict[str, float | int | str] = field(default_factory=dict)


class _Stages:
    """Times named stages and announces each one to ``progress``."""

    def __init__(self, progress: Callable[[str], None] | None) -> None:
        self.progress = progress
        self.timings: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if self.progress is not None:
            self.progress(name)
        start = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - start, 4)


def _behaviour(win: EncodedWindow) -> pd.DataFrame:
    return behaviour_features(
        win.acc,
        win.t,
        win.n,
        ip=win.ip,
        prefix=win.prefix,
        device=win.device,
        model=win.model,
        api_key=win.api_key,
        prompt_tokens=win.prompt_tokens,
        completion_tokens=win.completion_tokens,
        status=win.status,
    )


def _empty(timings: dict[str, float]) -> Detection:
    return Detection(
        pd.DataFrame(columns=CLUSTER_COLUMNS),
        pd.DataFrame(columns=MEMBERSHIP_COLUMNS),
        pd.DataFrame(columns=DECISION_COLUMNS),
        timings=timings,
        stats={"accounts": 0, "requests": 0},
    )


def detect(
    accounts: pd.DataFrame,
    requests: pd.DataFrame,
    context: DetectContext,
    params: EngineParams | None = None,
    progress: Callable[[str], None] | None = None,
) -> Detection:
    """Find farms in the window and score every account in it.

    accounts: :data:`~sentra_graph.store.window.ACCOUNT_COLUMNS`; requests:
    :data:`~sentra_graph.store.window.WINDOW_REQUEST_COLUMNS` (markers and template_id
    assigned); context: feedback, allow-lists, previous memberships, thresholds; progress:
    called with each stage's name as it starts.
    """
    params = params or EngineParams()
    seed, risk = context.seed, params.risk
    stages = _Stages(progress)
    with stages("prepare"):
        win = encode_window(accounts, requests)
        allowed = allowlist_sets(context.allowlist)
    if win.n == 0:
        return _empty(stages.timings)
    with stages("features"):
        behaviour = _behaviour(win)
        templates = template_features(win.acc, win.template, win.markers, win.n)
        rates = templates[["cot_rate", "rubric_rate", "tool_rate"]].to_numpy()
        markers = rates.max(axis=1)
        bin_seconds = params.behaviour.bin_minutes * 60.0
        activity = activity_matrix(win.acc, win.t, win.n, bin_seconds=bin_seconds)
    with stages("graph"):
        incidence = build_incidence(
            win,
            behaviour["n_requests"].to_numpy(),
            templates["n_prompts"].to_numpy(),
            allowed["ip"],
            allowed["org"],
        )
        projection = project(incidence, units=win.units, org=win.org, params=params.graph)
    with stages("lockstep"):
        vectors = activity_vectors(
            activity,
            params.lockstep.min_active_bins,
            bins_per_day=round(86_400 / bin_seconds),
            min_active_days=params.lockstep.min_active_days,
        )
        baseline = baseline_cosine(vectors)
        lockstep, _ = lockstep_groups(vectors, params.lockstep, seed)
    with stages("cluster"):
        size = params.cluster.min_cluster_size
        found = communities(projection, params.cluster, seed)
        fine = small_to_none(merge_lockstep(found, lockstep), size)
        linked = components(projection, params.cluster.min_edge_weight)
        coarse = small_to_none(merge_lockstep(linked, lockstep), size)
    with stages("evidence"):

        def assess(labels: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
            inputs = FarmInputs(
                labels,
                win.units,
                incidence,
                vectors,
                baseline,
                win.created,
                rates,
                templates["n_prompts"].to_numpy(dtype=float),
            )
            rows = entity_sharing(inputs, risk)
            return rows, member_channels(inputs, rows, risk)

        level_scores = [
            farm_scores(assess(level)[1], level, win.units, risk)["score"].to_numpy(dtype=float)
            for level in (fine, coarse)
        ]
        labels = choose_level(fine, coarse, *level_scores)
        rows, channels = assess(labels)
        ids = farm_ids(
            labels, win.account_ids, context.previous_memberships, params.cluster.min_jaccard
        )
    with stages("score"):
        farms = farm_scores(channels, labels, win.units, risk)
        own = behaviour_score(templates, behaviour)
        dormant = behaviour["n_requests"].to_numpy() == 0
        score, strength = account_scores(channels, labels, farms, own, risk, dormant)
        y = label_vector(win.account_ids, latest_labels(context.feedback))
        supervised = None
        if risk.model == "supervised":
            features = pd.concat([behaviour, templates, channels], axis=1)
            features["farm_score"] = farms["score"].reindex(labels).fillna(0.0).to_numpy()
            supervised = supervised_scores(features, y, min_labels=risk.min_labels, seed=seed)
        if supervised is not None:
            score = supervised.scores.copy()
        verdicts = apply_analysts(
            score,
            y,
            allowlisted_reasons(
                win.account_ids, win.org_ids, only_from_ips(win, allowed["ip"]), allowed
            ),
            farm_pull(projection, y == 1, labels),
            block=context.block_threshold,
            review=context.review_threshold,
            pull_weight=risk.feedback_pull,
        )
        if supervised is not None:
            for notes, text in zip(verdicts.notes, supervised.explanations, strict=True):
                notes.insert(0, text)
    with stages("explain"):
        explainer = Explainer(
            ReasonInputs(
                incidence=incidence,
                rows=rows,
                channels=channels,
                templates=templates,
                farms=farms,
                template_markers=template_marker_rates(win.template, win.markers),
                n_requests=behaviour["n_requests"].to_numpy(),
                created=win.created,
                baseline=baseline,
                bin_minutes=params.behaviour.bin_minutes,
                burst_minutes=risk.signup_burst_minutes,
            )
        )
        scored = Scored(
            account_ids=win.account_ids,
            labels=labels,
            ids=ids,
            farms=farms,
            score=verdicts.score,
            strength=strength,
            decision=verdicts.decision,
            channels=channels,
            own=own,
            markers=markers,
            n_requests=behaviour["n_requests"].to_numpy(),
            first_reason=verdicts.first_reason,
            notes=verdicts.notes,
        )
        clusters, memberships, decisions = build_frames(
            scored, explainer, block=context.block_threshold, review=context.review_threshold
        )
    stats: dict[str, float | int | str] = {
        "accounts": win.n,
        "requests": len(win.acc),
        "entities": incidence.n_entities,
        "links": int(projection.nnz),
        "lockstep_groups": int(lockstep.max()) + 1 if len(lockstep) else 0,
        "clusters": len(ids),
        "supervised": int(supervised is not None),
    }
    return Detection(clusters, memberships, decisions, stages.timings, stats)
