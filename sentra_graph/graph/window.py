"""The window, integer-coded: one vectorised pass from contract columns to the graph's arrays.

Accounts are sorted by id and numbered 0..n-1 (accounts only seen in requests are added, with
their first request as sign-up time); every per-request column becomes an integer code (-1 for
a missing value) so that later stages work with ``bincount`` and sparse matrices, never with
strings. An account without org is its own *org unit*; accounts of one org share a unit.

>>> acc = pd.DataFrame({"account_id": ["b", "a"], "created_at": ["2025-01-01"] * 2,
...                     "org_id": ["o", "o"]})
>>> req = pd.DataFrame({"ts": ["2025-01-02"], "account_id": ["c"], "ip": ["10.0.0.1"]})
>>> win = encode_window(acc, req)
>>> win.account_ids.tolist(), win.units.tolist(), win.acc.tolist(), win.prefix_labels.tolist()
(['a', 'b', 'c'], [0, 0, 3], [2], ['10.0.0.0/24'])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sentra_graph.features.behaviour import NO_TEMPLATE, epoch_seconds
from sentra_graph.graph.entities import (
    ENTITY_TYPES,
    Incidence,
    account_entities,
    combine,
    ip_prefix,
    request_entities,
)

__all__ = ["EncodedWindow", "build_incidence", "codes", "encode_window", "only_from_ips"]


@dataclass(frozen=True)
class EncodedWindow:
    """The window as arrays: per account (length n) or per request (length of ``acc``).

    Codes index the matching ``*_labels`` array; -1 means missing.
    """

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


def codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes (-1 for missing) and the distinct values they index.

    >>> [x.tolist() for x in codes(pd.Series(["x", None, "y", "x"]))]
    [[0, -1, 1, 0], ['x', 'y']]
    """
    found, uniques = pd.factorize(values)
    return found.astype(np.int64), np.asarray(uniques, dtype=object)


def _float(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)


def _column(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series([None] * len(frame), index=frame.index, dtype=object)
    return frame[column]


def _with_unknown_accounts(
    accounts: pd.DataFrame, ids: np.ndarray, per_request: np.ndarray, ts: pd.Series
) -> pd.DataFrame:
    """Accounts plus those only seen in requests (created at their first request)."""
    known = set(accounts["account_id"].astype(str))
    missing = [a for a in ids.tolist() if a not in known]
    if not missing:
        return accounts
    first_seen = (
        pd.DataFrame({"account_id": ids[per_request], "ts": ts})
        .loc[lambda f: f["account_id"].isin(missing)]
        .groupby("account_id")["ts"]
        .min()
    )
    extra = pd.DataFrame({"account_id": first_seen.index, "created_at": first_seen.array})
    return pd.concat([accounts, extra], ignore_index=True)


def _devices(requests: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Device codes (TLS fingerprint + user agent) and TLS codes, with their labels."""
    tls, tls_labels = codes(_column(requests, "tls_fingerprint"))
    ua, ua_labels = codes(_column(requests, "user_agent"))
    width = ua.max(initial=-1) + 2
    key = np.where((tls >= 0) | (ua >= 0), (tls + 1) * width + ua + 1, -1)
    device, device_keys = codes(pd.Series(key).where(key >= 0))
    tls_of = device_keys.astype(np.int64) // width - 1
    ua_of = device_keys.astype(np.int64) % width - 1
    device_labels = np.array(
        [
            f"{tls_labels[t] if t >= 0 else '-'}|{ua_labels[u] if u >= 0 else '-'}"
            for t, u in zip(tls_of.tolist(), ua_of.tolist(), strict=True)
        ],
        dtype=object,
    )
    return device, device_labels, tls, tls_labels


def encode_window(accounts: pd.DataFrame, requests: pd.DataFrame) -> EncodedWindow:
    """Integer-code a window given in contract columns (see :mod:`sentra_graph.store.window`)."""
    accounts = accounts.drop_duplicates("account_id", keep="last")
    per_request, request_ids = codes(requests["account_id"].astype(str))
    ts = pd.to_datetime(requests["ts"], utc=True)
    accounts = _with_unknown_accounts(accounts, request_ids, per_request, ts)
    accounts = accounts.assign(account_id=accounts["account_id"].astype(str))
    accounts = accounts.sort_values("account_id", kind="stable").reset_index(drop=True)
    account_ids = accounts["account_id"].to_numpy(dtype=object)
    acc = pd.Index(account_ids).get_indexer(request_ids)[per_request].astype(np.int64)
    org_col = _column(accounts, "org_id")
    org, _ = codes(org_col)
    n = len(accounts)
    units = np.where(org >= 0, org, org.max(initial=-1) + 1 + np.arange(n)).astype(np.int64)
    ip, ip_labels = codes(requests["ip"].astype(str))
    prefix_of_ip, prefix_labels = codes(ip_prefix(pd.Series(ip_labels, dtype=object)))
    prefix = np.where(ip >= 0, prefix_of_ip[np.maximum(ip, 0)], -1)
    device, device_labels, tls, tls_labels = _devices(requests)
    template = _float(requests, "template_id")
    return EncodedWindow(
        account_ids=account_ids,
        org_ids=org_col.where(org_col.notna(), None).to_numpy(dtype=object),
        org=org,
        units=units,
        created=epoch_seconds(pd.to_datetime(accounts["created_at"], utc=True)),
        payment=_column(accounts, "payment_fingerprint"),
        signup_ip=_column(accounts, "signup_ip"),
        acc=acc,
        t=epoch_seconds(ts),
        ip=ip,
        ip_labels=ip_labels,
        prefix=prefix,
        prefix_labels=prefix_labels,
        device=device,
        device_labels=device_labels,
        tls=tls,
        tls_labels=tls_labels,
        model=codes(_column(requests, "model"))[0],
        api_key=codes(_column(requests, "api_key_id"))[0],
        template=np.where(np.isnan(template), NO_TEMPLATE, template).astype(np.int64),
        markers=np.nan_to_num(_float(requests, "markers")).astype(np.int64),
        prompt_tokens=_float(requests, "prompt_tokens"),
        completion_tokens=_float(requests, "completion_tokens"),
        status=_float(requests, "status"),
    )


def build_incidence(
    win: EncodedWindow,
    n_requests: np.ndarray,
    n_prompts: np.ndarray,
    allowed_ips: set[str],
    allowed_orgs: set[str],
) -> Incidence:
    """The account <-> entity incidence of the window, without allow-listed links.

    n_requests, n_prompts: per account (denominators of the request and template shares).
    Allow-listed IPs (as request or sign-up IPs) and every account of an allow-listed org stop
    contributing links.
    """
    template_codes, template_labels = codes(pd.Series(win.template).where(win.template >= 0))
    pay, pay_labels = codes(win.payment)
    sip, sip_labels = codes(win.signup_ip)
    spx, spx_labels = codes(ip_prefix(win.signup_ip))
    parts = [
        account_entities("payment", pay, pay_labels),
        account_entities("signup_ip", sip, sip_labels),
        account_entities("signup_prefix", spx, spx_labels),
        request_entities("ip", win.acc, win.ip, win.ip_labels, n_requests),
        request_entities("prefix", win.acc, win.prefix, win.prefix_labels, n_requests),
        request_entities("device", win.acc, win.device, win.device_labels, n_requests),
        request_entities("tls", win.acc, win.tls, win.tls_labels, n_requests),
        request_entities(
            "template",
            win.acc,
            template_codes,
            template_labels.astype(np.int64).astype(str).astype(object),
            n_prompts,
            min_accounts=2,
        ),
    ]
    incidence = combine(parts, win.n)
    drop = np.zeros(len(incidence.account), dtype=bool)
    if allowed_ips:
        kinds = [ENTITY_TYPES.index("ip"), ENTITY_TYPES.index("signup_ip")]
        listed = np.isin(incidence.entity_type, kinds) & np.isin(
            incidence.entity_key.astype(str), list(allowed_ips)
        )
        drop |= listed[incidence.entity]
    if allowed_orgs:
        in_org = (win.org >= 0) & np.isin(win.org_ids.astype(str), list(allowed_orgs))
        drop |= in_org[incidence.account]
    return incidence.without(drop) if drop.any() else incidence


def only_from_ips(win: EncodedWindow, ips: set[str]) -> np.ndarray:
    """Per account: true when it made requests and every one came from one of ``ips``."""
    if not ips:
        return np.zeros(win.n, dtype=bool)
    listed = np.isin(win.ip_labels.astype(str), list(ips))
    hits = np.bincount(win.acc, weights=listed[win.ip].astype(float), minlength=win.n)
    total = np.bincount(win.acc, minlength=win.n)
    return (total > 0) & (hits >= total)
