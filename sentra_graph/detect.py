"""The engine's pure entry point: a window of accounts and requests in, farms and decisions out.

Nothing here touches a database; :mod:`sentra_graph.pipeline` reads the window from the store,
calls :func:`detect` and writes the :class:`Detection` back. The stages, in order:

1. ``prepare``: integer-code the window (accounts, org units, IPs, prefixes, devices);
2. ``features``: per-account behaviour, template/marker aggregates, activity histograms;
3. ``graph``: the account <-> entity incidence and its weighted account projection;
4. ``lockstep``: groups of accounts active in the same short time windows (HDBSCAN);
5. ``cluster``: Louvain communities on the thresholded projection, joined by lockstep groups;
6. ``evidence``: per-member channel evidence (payment, network, device, content, timing,
   sign-up), always against peers of *other* org units;
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
    NO_TEMPLATE,
    activity_matrix,
    behaviour_features,
    epoch_seconds,
    template_features,
)
from sentra_graph.features.markers import COT, RUBRIC, TOOL
from sentra_graph.graph.entities import (
    ENTITY_TYPES,
    Incidence,
    account_entities,
    combine,
    ip_prefix,
    request_entities,
)
from sentra_graph.graph.projection import project
from sentra_graph.params import EngineParams
from sentra_graph.risk.evidence import CHANNELS, FarmInputs, entity_sharing, member_channels
from sentra_graph.risk.feedback import (
    allowlist_sets,
    allowlisted_reasons,
    farm_pull,
    latest_labels,
)
from sentra_graph.risk.model import label_vector, supervised_scores
from sentra_graph.risk.reasons import Explainer, ReasonInputs, farm_reasons
from sentra_graph.risk.scoring import (
    DECISIONS,
    account_scores,
    behaviour_score,
    decide,
    farm_scores,
)

__all__ = ["DECISIONS", "DetectContext", "Detection", "detect"]

CLUSTER_COLUMNS = ["cluster_id", "size", "score", "decision", "reasons", "evidence"]
MEMBERSHIP_COLUMNS = ["account_id", "cluster_id", "strength"]
DECISION_COLUMNS = ["account_id", "score", "decision", "cluster_id", "reasons", "evidence"]
CONFIRMED_FARM_SCORE = 0.99
"""Score of an account an analyst confirmed as a farm member."""


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


@dataclass
class _Window:
    """The window, integer-coded (arrays per account or per request)."""

    account_ids: np.ndarray
    org_ids: np.ndarray
    org: np.ndarray
    units: np.ndarray
    created: np.ndarray
    payment: pd.Series
    signup_ip: pd.Series
    acc: np.ndarray
    t: np.ndarray
    ip: np.ndarray
    ip_labels: np.ndarray
    prefix: np.ndarray
    prefix_labels: np.ndarray
    device: np.ndarray
    device_labels: np.ndarray
    tls: np.ndarray
    tls_labels: np.ndarray
    model: np.ndarray
    api_key: np.ndarray
    template: np.ndarray
    markers: np.ndarray
    prompt_tokens: np.ndarray
    completion_tokens: np.ndarray
    status: np.ndarray

    @property
    def n(self) -> int:
        return len(self.account_ids)


def _codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    codes, uniques = pd.factorize(values)
    return codes.astype(np.int64), np.asarray(uniques, dtype=object)


def _float(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)


def _column(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series([None] * len(frame), index=frame.index, dtype=object)
    return frame[column]


def _prepare(accounts: pd.DataFrame, requests: pd.DataFrame) -> _Window:
    accounts = accounts.drop_duplicates("account_id", keep="last")
    req_acc_codes, req_acc_ids = _codes(requests["account_id"].astype(str))
    known = set(accounts["account_id"].astype(str))
    missing = [a for a in req_acc_ids.tolist() if a not in known]
    ts = pd.to_datetime(requests["ts"], utc=True)
    if missing:
        first_seen = (
            pd.DataFrame({"account_id": req_acc_ids[req_acc_codes], "ts": ts})
            .loc[lambda f: f["account_id"].isin(missing)]
            .groupby("account_id")["ts"]
            .min()
        )
        extra = pd.DataFrame({"account_id": first_seen.index, "created_at": first_seen.array})
        accounts = pd.concat([accounts, extra], ignore_index=True)
    accounts = accounts.assign(account_id=accounts["account_id"].astype(str))
    accounts = accounts.sort_values("account_id", kind="stable").reset_index(drop=True)
    account_ids = accounts["account_id"].to_numpy(dtype=object)
    acc = pd.Index(account_ids).get_indexer(req_acc_ids)[req_acc_codes].astype(np.int64)
    org_col = _column(accounts, "org_id")
    org_ids = org_col.where(org_col.notna(), None).to_numpy(dtype=object)
    org, _ = _codes(org_col)
    n = len(accounts)
    units = np.where(org >= 0, org, org.max(initial=-1) + 1 + np.arange(n))
    ip_codes, ip_labels = _codes(requests["ip"].astype(str))
    prefixes = ip_prefix(pd.Series(ip_labels))
    prefix_of_ip, prefix_labels = _codes(prefixes)
    prefix = np.where(ip_codes >= 0, prefix_of_ip[np.maximum(ip_codes, 0)], -1)
    tls, tls_labels = _codes(_column(requests, "tls_fingerprint"))
    ua, _ = _codes(_column(requests, "user_agent"))
    device_key = np.where((tls >= 0) | (ua >= 0), (tls + 1) * (ua.max(initial=-1) + 2) + ua + 1, -1)
    device, _ = _codes(pd.Series(device_key).where(device_key >= 0))
    first_row = pd.Series(np.arange(len(device))).groupby(device).first()
    tls_txt = _column(requests, "tls_fingerprint").to_numpy(dtype=object)
    ua_txt = _column(requests, "user_agent").to_numpy(dtype=object)
    device_labels = np.array(
        [f"{tls_txt[i] or '-'}|{ua_txt[i] or '-'}" for i in first_row.loc[first_row.index >= 0]],
        dtype=object,
    )
    template = _float(requests, "template_id")
    markers = _float(requests, "markers")
    return _Window(
        account_ids=account_ids,
        org_ids=org_ids,
        org=org,
        units=units.astype(np.int64),
        created=epoch_seconds(pd.to_datetime(accounts["created_at"], utc=True)),
        payment=_column(accounts, "payment_fingerprint"),
        signup_ip=_column(accounts, "signup_ip"),
        acc=acc,
        t=epoch_seconds(ts),
        ip=ip_codes,
        ip_labels=ip_labels,
        prefix=prefix,
        prefix_labels=prefix_labels,
        device=device,
        device_labels=device_labels,
        tls=tls,
        tls_labels=tls_labels,
        model=_codes(_column(requests, "model"))[0],
        api_key=_codes(_column(requests, "api_key_id"))[0],
        template=np.where(np.isnan(template), NO_TEMPLATE, template).astype(np.int64),
        markers=np.nan_to_num(markers).astype(np.int64),
        prompt_tokens=_float(requests, "prompt_tokens"),
        completion_tokens=_float(requests, "completion_tokens"),
        status=_float(requests, "status"),
    )


def _incidence(win: _Window, behaviour: pd.DataFrame, templates: pd.DataFrame) -> Incidence:
    pay_codes, pay_labels = _codes(win.payment)
    sip_codes, sip_labels = _codes(win.signup_ip)
    spx_codes, spx_labels = _codes(ip_prefix(win.signup_ip))
    n_req = behaviour["n_requests"].to_numpy()
    tpl = np.where(win.template >= 0, win.template, -1)
    tpl_labels = np.array([str(i) for i in range(int(tpl.max(initial=-1)) + 1)], dtype=object)
    parts = [
        account_entities("payment", pay_codes, pay_labels),
        account_entities("signup_ip", sip_codes, sip_labels),
        account_entities("signup_prefix", spx_codes, spx_labels),
        request_entities("ip", win.acc, win.ip, win.ip_labels, n_req),
        request_entities("prefix", win.acc, win.prefix, win.prefix_labels, n_req),
        request_entities("device", win.acc, win.device, win.device_labels, n_req),
        request_entities("tls", win.acc, win.tls, win.tls_labels, n_req),
        request_entities("template", win.acc, tpl, tpl_labels, templates["n_prompts"].to_numpy()),
    ]
    return combine(parts, win.n)


def _without_allowlisted(inc: Incidence, win: _Window, allowed: dict[str, set[str]]) -> Incidence:
    """Allow-listed IPs and orgs stop contributing links."""
    drop = np.zeros(len(inc.account), dtype=bool)
    if allowed["ip"]:
        ip_kinds = [ENTITY_TYPES.index("ip"), ENTITY_TYPES.index("signup_ip")]
        allowed_entity = np.isin(inc.entity_type, ip_kinds) & np.isin(
            inc.entity_key.astype(str), list(allowed["ip"])
        )
        drop |= allowed_entity[inc.entity]
    if allowed["org"]:
        in_org = np.isin(win.org_ids.astype(str), list(allowed["org"])) & (win.org >= 0)
        drop |= in_org[inc.account]
    return inc.without(drop) if drop.any() else inc


def _template_markers(win: _Window) -> pd.DataFrame:
    has = win.template >= 0
    frame = pd.DataFrame(
        {
            "template_id": win.template[has],
            "cot_rate": (win.markers[has] & COT) > 0,
            "rubric_rate": (win.markers[has] & RUBRIC) > 0,
            "tool_rate": (win.markers[has] & TOOL) > 0,
        }
    )
    return frame.groupby("template_id").mean()


def _only_allowed_ips(win: _Window, allowed: set[str]) -> np.ndarray:
    if not allowed:
        return np.zeros(win.n, dtype=bool)
    allowed_code = np.isin(win.ip_labels.astype(str), list(allowed))
    hits = np.bincount(win.acc, weights=allowed_code[win.ip].astype(float), minlength=win.n)
    total = np.bincount(win.acc, minlength=win.n)
    return (total > 0) & (hits >= total)


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
    seed = context.seed
    stages = _Stages(progress)
    risk = params.risk
    with stages("prepare"):
        win = _prepare(accounts, requests)
        allowed = allowlist_sets(context.allowlist)
    if win.n == 0:
        return Detection(
            pd.DataFrame(columns=CLUSTER_COLUMNS),
            pd.DataFrame(columns=MEMBERSHIP_COLUMNS),
            pd.DataFrame(columns=DECISION_COLUMNS),
            timings=stages.timings,
            stats={"accounts": 0, "requests": 0},
        )
    with stages("features"):
        behaviour = behaviour_features(
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
        templates = template_features(win.acc, win.template, win.markers, win.n)
        activity = activity_matrix(
            win.acc, win.t, win.n, bin_seconds=params.behaviour.bin_minutes * 60.0
        )
    with stages("graph"):
        incidence = _without_allowlisted(_incidence(win, behaviour, templates), win, allowed)
        projection = project(incidence, units=win.units, org=win.org, params=params.graph)
    with stages("lockstep"):
        vectors = activity_vectors(
            activity,
            params.lockstep.min_active_bins,
            bins_per_day=round(1440 / params.behaviour.bin_minutes),
            min_active_days=params.lockstep.min_active_days,
        )
        baseline = baseline_cosine(vectors)
        lockstep, _ = lockstep_groups(vectors, params.lockstep, seed)
    with stages("cluster"):
        size = params.cluster.min_cluster_size
        fine = small_to_none(
            merge_lockstep(communities(projection, params.cluster, seed), lockstep), size
        )
        coarse = small_to_none(
            merge_lockstep(components(projection, params.cluster.min_edge_weight), lockstep), size
        )
    with stages("evidence"):
        markers = templates[["cot_rate", "rubric_rate", "tool_rate"]].max(axis=1).to_numpy()

        def assess(labels: np.ndarray) -> tuple[FarmInputs, pd.DataFrame, pd.DataFrame]:
            inputs = FarmInputs(
                labels, win.units, incidence, vectors, baseline, win.created, markers
            )
            rows = entity_sharing(inputs, risk)
            return inputs, rows, member_channels(inputs, rows, risk)

        level_scores = []
        for level in (fine, coarse):
            _, _, level_channels = assess(level)
            farms = farm_scores(level_channels, level, win.units, risk)
            level_scores.append(farms["score"].to_numpy(dtype=float))
        labels = choose_level(fine, coarse, *level_scores)
        inputs, rows, channels = assess(labels)
        ids = farm_ids(
            labels, win.account_ids, context.previous_memberships, params.cluster.min_jaccard
        )
    with stages("score"):
        farms = farm_scores(channels, labels, win.units, risk)
        own = behaviour_score(templates, behaviour)
        score, strength = account_scores(channels, labels, farms, own, risk)
        notes: list[list[str]] = [[] for _ in range(win.n)]
        labelled = latest_labels(context.feedback)
        y = label_vector(win.account_ids, labelled)
        supervised = None
        if risk.model == "supervised":
            features = pd.concat([behaviour, templates, channels], axis=1)
            features["farm_score"] = farms["score"].reindex(labels).fillna(0.0).to_numpy()
            supervised = supervised_scores(features, y, min_labels=risk.min_labels, seed=seed)
            if supervised is not None:
                score = supervised.scores.copy()
                for i, text in enumerate(supervised.explanations):
                    notes[i].append(text)
        confirmed = y == 1
        pull = farm_pull(projection, confirmed, labels)
        score = np.clip(score + risk.feedback_pull * pull, 0.0, 1.0)
        score[confirmed] = np.maximum(score[confirmed], CONFIRMED_FARM_SCORE)
        allow_reason = allowlisted_reasons(
            win.account_ids, win.org_ids, _only_allowed_ips(win, allowed["ip"]), allowed
        )
        overrides: dict[int, str] = {}
        for i in np.flatnonzero(confirmed):
            overrides[int(i)] = "confirmed farm member by an analyst"
        for i in np.flatnonzero(y == 0):
            overrides[int(i)] = "confirmed legitimate by an analyst"
        for i, reason in enumerate(allow_reason):
            if reason is not None:
                overrides[i] = reason
        cap = context.review_threshold * 0.99
        for i, reason in overrides.items():
            if reason != "confirmed farm member by an analyst":
                score[i] = min(score[i], cap)
        decision = decide(score, context.block_threshold, context.review_threshold)
        for i, reason in overrides.items():
            if reason != "confirmed farm member by an analyst":
                decision[i] = DECISIONS[0]
        for i in np.flatnonzero((pull > 0) & ~confirmed):
            if pull[i] * risk.feedback_pull >= 0.05:
                notes[i].append(f"linked to analyst-confirmed farm accounts ({pull[i]:.0%} pull)")
    with stages("explain"):
        reason_inputs = ReasonInputs(
            incidence=incidence,
            rows=rows,
            channels=channels,
            templates=templates,
            farms=farms,
            template_markers=_template_markers(win),
            n_requests=behaviour["n_requests"].to_numpy(),
            created=win.created,
            baseline=baseline,
            bin_minutes=params.behaviour.bin_minutes,
            burst_minutes=risk.signup_burst_minutes,
        )
        result = _frames(
            win,
            labels,
            ids,
            farms,
            score,
            strength,
            decision,
            channels,
            own,
            templates,
            behaviour,
            overrides,
            notes,
            reason_inputs,
            context,
        )
    result.timings = stages.timings
    result.stats = {
        "accounts": win.n,
        "requests": len(win.acc),
        "entities": incidence.n_entities,
        "links": int(projection.nnz),
        "lockstep_groups": int(lockstep.max()) + 1 if len(lockstep) else 0,
        "clusters": len(ids),
        "supervised": int(supervised is not None),
    }
    return result


def _frames(
    win: _Window,
    labels: np.ndarray,
    ids: list[str],
    farms: pd.DataFrame,
    score: np.ndarray,
    strength: np.ndarray,
    decision: np.ndarray,
    channels: pd.DataFrame,
    own: np.ndarray,
    templates: pd.DataFrame,
    behaviour: pd.DataFrame,
    overrides: dict[int, str],
    notes: list[list[str]],
    reason_inputs: ReasonInputs,
    context: DetectContext,
) -> Detection:
    members = np.flatnonzero(labels >= 0)
    id_arr = np.array(ids, dtype=object)
    cluster_of = np.full(win.n, None, dtype=object)
    cluster_of[members] = id_arr[labels[members]]
    explainer = Explainer(reason_inputs)
    order = np.argsort(labels[members], kind="stable")
    bounds = np.searchsorted(labels[members][order], np.arange(len(ids) + 1))
    clusters = []
    for label, cluster_id in enumerate(ids):
        in_farm = members[order[bounds[label] : bounds[label + 1]]]
        evidence = explainer.farm_evidence(label, in_farm)
        farm_score = float(farms.at[label, "score"])
        clusters.append(
            {
                "cluster_id": cluster_id,
                "size": len(in_farm),
                "score": round(farm_score, 4),
                "decision": str(
                    decide(
                        np.array([farm_score]), context.block_threshold, context.review_threshold
                    )[0]
                ),
                "reasons": farm_reasons(evidence),
                "evidence": evidence,
            }
        )
    marker = templates[["cot_rate", "rubric_rate", "tool_rate"]].max(axis=1).to_numpy()
    n_requests = behaviour["n_requests"].to_numpy()
    farm_size = farms["size"].to_numpy() if len(farms) else np.zeros(0)
    farm_units = farms["units"].to_numpy() if len(farms) else np.zeros(0)
    farm_score = farms["score"].to_numpy() if len(farms) else np.zeros(0)
    channel_values = np.round(channels[list(CHANNELS)].to_numpy(), 3)
    reasons: list[list[str]] = []
    evidence_col: list[dict | None] = []
    for i in range(win.n):
        lines: list[str] = []
        if i in overrides:
            lines.append(overrides[i])
        lines.extend(notes[i])
        label = labels[i]
        if label >= 0:
            lines.append(
                f"member of farm {cluster_of[i]}: {int(farm_size[label])} accounts in "
                f"{int(farm_units[label])} orgs, farm score {farm_score[label]:.2f}"
            )
            lines.extend(explainer.account(i))
        if own[i] >= 0.3:
            lines.append(
                f"own traffic: {marker[i]:.0%} of prompts with distillation markers, "
                f"{int(n_requests[i])} requests"
            )
        reasons.append(lines)
        if label >= 0 or own[i] > 0:
            evidence_col.append(
                {
                    "channels": dict(zip(CHANNELS, channel_values[i].tolist(), strict=True)),
                    "membership": round(float(strength[i]), 3),
                    "behaviour": round(float(own[i]), 3),
                }
            )
        else:
            evidence_col.append(None)
    decisions = pd.DataFrame(
        {
            "account_id": win.account_ids,
            "score": np.round(score, 4),
            "decision": decision,
            "cluster_id": cluster_of,
            "reasons": reasons,
            "evidence": evidence_col,
        }
    )
    memberships = pd.DataFrame(
        {
            "account_id": win.account_ids[members],
            "cluster_id": cluster_of[members],
            "strength": np.round(strength[members], 4),
        }
    )
    cluster_frame = pd.DataFrame(clusters, columns=CLUSTER_COLUMNS)
    return Detection(cluster_frame, memberships, decisions)
