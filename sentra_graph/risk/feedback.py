"""Analyst feedback and allow-lists, applied on top of the computed scores.

- A confirmed farm member (label ``farm``) is blocked, and pulls up the accounts linked to it
  (in proportion to the share of their link weight that goes to confirmed members, and to
  membership of the same farm).
- A confirmed legitimate account (label ``legit``) and an allow-listed account, an account of an
  allow-listed org, or one whose every request came from allow-listed IPs is allowed, with the
  reason; its score is capped below the review threshold.

>>> latest_labels(pd.DataFrame({"account_id": ["a", "a"], "label": ["farm", "legit"]}))
{'a': 'legit'}
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

__all__ = ["allowlist_sets", "allowlisted_reasons", "farm_pull", "latest_labels"]

ALLOW_KINDS = ("account", "org", "ip")


def latest_labels(feedback: pd.DataFrame) -> dict[str, str]:
    """The last label given to each account (rows are in the order they were given)."""
    if feedback is None or len(feedback) == 0:
        return {}
    last = feedback[["account_id", "label"]].dropna().drop_duplicates("account_id", keep="last")
    return dict(zip(last["account_id"].astype(str), last["label"].astype(str), strict=True))


def allowlist_sets(allowlist: pd.DataFrame) -> dict[str, set[str]]:
    """Allow-listed values by kind (``account``, ``org``, ``ip``).

    >>> allowlist_sets(pd.DataFrame({"kind": ["ip"], "value": ["10.0.0.1"]}))["ip"]
    {'10.0.0.1'}
    """
    sets: dict[str, set[str]] = {kind: set() for kind in ALLOW_KINDS}
    if allowlist is None or len(allowlist) == 0:
        return sets
    for kind, value in zip(allowlist["kind"], allowlist["value"], strict=True):
        if kind in sets and value is not None:
            sets[kind].add(str(value))
    return sets


def allowlisted_reasons(
    account_ids: np.ndarray,
    org_ids: np.ndarray,
    only_allowed_ips: np.ndarray,
    sets: dict[str, set[str]],
) -> list[str | None]:
    """Why each account is allow-listed (None if it is not).

    org_ids: org per account (None for none); only_allowed_ips: true where every request of
    the account came from an allow-listed IP.
    """
    out: list[str | None] = [None] * len(account_ids)
    for i, (account, org) in enumerate(zip(account_ids.tolist(), org_ids.tolist(), strict=True)):
        if account in sets["account"]:
            out[i] = "allow-listed account"
        elif org is not None and org in sets["org"]:
            out[i] = f"allow-listed org {org}"
        elif only_allowed_ips[i]:
            out[i] = "all requests from allow-listed IPs"
    return out


def farm_pull(
    projection: sparse.coo_matrix, confirmed: np.ndarray, labels: np.ndarray
) -> np.ndarray:
    """How strongly each account is tied to analyst-confirmed farm accounts, in [0, 1].

    The larger of: the share of the account's link weight going to confirmed accounts, and,
    for members of a farm holding confirmed accounts, ten times the confirmed share of the
    farm (one confirmed member in ten gives full pull).

    >>> p = sparse.coo_matrix((np.array([1.0, 1.0]), (np.array([0, 1]), np.array([1, 2]))),
    ...                       shape=(3, 3))
    >>> farm_pull(p, np.array([True, False, False]), np.array([-1, -1, -1])).tolist()
    [0.0, 0.5, 0.0]
    """
    n = len(confirmed)
    pull = np.zeros(n)
    if not confirmed.any():
        return pull
    sym = (projection + projection.T).tocsr()
    strength = np.asarray(sym.sum(axis=1)).ravel()
    to_confirmed = sym @ confirmed.astype(np.float64)
    pull = np.divide(to_confirmed, strength, out=np.zeros(n), where=strength > 0)
    members = labels >= 0
    if members.any():
        n_farms = int(labels.max()) + 1
        size = np.bincount(labels[members], minlength=n_farms)
        hits = np.bincount(labels[members & confirmed], minlength=n_farms)
        farm_share = np.clip(10.0 * hits / np.maximum(size, 1), 0.0, 1.0)
        pull[members] = np.maximum(pull[members], farm_share[labels[members]])
    pull[confirmed] = 0.0
    return np.clip(pull, 0.0, 1.0)
