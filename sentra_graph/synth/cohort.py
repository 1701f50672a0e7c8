"""Shared pieces of every cohort (a group of accounts generated together): the context, the
cohort container, and helpers for sign-ups, identities, address choice and prompt columns.

A cohort holds its accounts (contract columns plus truth) and its requests with *local*
account indices; :mod:`sentra_graph.synth.scenario` assigns ids and renders prompts at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sentra_graph.synth.network import hex_ids, ipv6_ips, residential_ips
from sentra_graph.synth.prompts import KIND, template_flags
from sentra_graph.synth.timing import DAY, HOUR

__all__ = ["Cohort", "Ctx", "Pools"]

COUNTRIES = {
    # country: (UTC offset in hours, share of legit accounts)
    "US": (-6, 0.30), "IN": (5.5, 0.09), "GB": (0, 0.06), "DE": (1, 0.06), "BR": (-3, 0.05),
    "FR": (1, 0.04), "CA": (-5, 0.04), "JP": (9, 0.04), "KR": (9, 0.03), "AU": (10, 0.03),
    "NG": (1, 0.02), "ID": (7, 0.02), "MX": (-6, 0.02), "ES": (1, 0.02), "IT": (1, 0.02),
    "NL": (1, 0.02), "PL": (1, 0.02), "TR": (3, 0.02), "VN": (7, 0.02), "PH": (8, 0.02),
    "SG": (8, 0.02), "KE": (3, 0.01), "EG": (2, 0.01), "SE": (1, 0.01), "AR": (-3, 0.01),
}  # fmt: skip
_COUNTRY_NAMES = np.array(list(COUNTRIES), dtype=object)
_COUNTRY_TZ = np.array([tz for tz, _ in COUNTRIES.values()])
_COUNTRY_P = np.array([p for _, p in COUNTRIES.values()]) / sum(p for _, p in COUNTRIES.values())

FREE_MAIL = np.array(
    ["gmail.com", "outlook.com", "hotmail.com", "yahoo.com", "icloud.com", "proton.me",
     "gmx.de", "naver.com", "yandex.com", "mail.com"], dtype=object
)  # fmt: skip
_FREE_MAIL_P = np.array([0.55, 0.12, 0.05, 0.08, 0.08, 0.04, 0.03, 0.02, 0.02, 0.01])
DISPOSABLE_MAIL = np.array(
    ["mailinator.com", "tempmail.dev", "guerrillamail.com", "10minutemail.net", "yopmail.com",
     "sharklasers.com", "throwaway.email"], dtype=object
)  # fmt: skip
MODELS = np.array(["sentra-mini", "sentra-large", "sentra-reasoner"], dtype=object)
_LEGIT_MODEL_P = np.array([0.58, 0.32, 0.10])


@dataclass
class Pools:
    """Network resources shared by unrelated accounts of every kind."""

    carriers: list[np.ndarray]
    """Carrier-grade NAT egress addresses, one array per mobile carrier."""
    paas: np.ndarray
    """Egress addresses of a popular hosting platform (many customers behind few IPs)."""
    proxies: np.ndarray
    """A residential proxy/VPN provider's exits (used by privacy-minded users and by farms)."""


@dataclass
class Ctx:
    """What every cohort builder needs: randomness, the window and the shared pools."""

    rng: np.random.Generator
    n_accounts: int
    start: int
    end: int
    rpa: float
    pools: Pools

    @property
    def days(self) -> float:
        return (self.end - self.start) / DAY

    def keys(self, n: int) -> np.ndarray:
        """``n`` fresh random skeleton keys."""
        return self.rng.integers(1, 2**63, n, dtype=np.int64).astype(np.uint64)


@dataclass
class Cohort:
    """Accounts and requests of one generated group (local account indices in requests)."""

    accounts: pd.DataFrame
    requests: dict[str, np.ndarray]


# ---- account attributes -------------------------------------------------------------------


def countries(rng: np.random.Generator, n: int, only: str | None = None) -> tuple:
    """Country codes and UTC offsets for ``n`` accounts (all ``only`` if given)."""
    if only is not None:
        idx = np.full(n, list(COUNTRIES).index(only))
    else:
        idx = rng.choice(len(_COUNTRY_NAMES), n, p=_COUNTRY_P)
    return _COUNTRY_NAMES[idx], _COUNTRY_TZ[idx]


def free_mail(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.choice(FREE_MAIL, n, p=_FREE_MAIL_P / _FREE_MAIL_P.sum())


def company_domains(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` plausible company e-mail domains."""
    stems = np.array(
        ["acme", "northwind", "blueharbor", "redwood", "pinecrest", "silverline", "brightpath",
         "ironbridge", "cedar", "lumen", "orbit", "summit", "kestrel", "nimbus", "vertex",
         "quanta", "helix", "atlas", "fable", "tidal"], dtype=object
    )  # fmt: skip
    tails = np.array(["labs", "tech", "health", "data", "soft", "group", "ai", "io", ""], object)
    tlds = np.array([".com", ".io", ".co", ".de", ".ai", ".net"], dtype=object)
    return (
        rng.choice(stems, n) + rng.choice(tails, n) + rng.integers(1, 99, n).astype(str)
        + rng.choice(tlds, n)
    )  # fmt: skip


def history_created(ctx: Ctx, n: int, in_window: float) -> np.ndarray:
    """Sign-up times over a long history; a share ``in_window`` signed up inside the window."""
    rng = ctx.rng
    age = np.minimum(rng.exponential(220, n), 1500) * DAY
    created = ctx.start - 1 - age.astype(np.int64)
    new = rng.random(n) < in_window
    created[new] = ctx.start + (rng.random(new.sum()) * (ctx.end - ctx.start)).astype(np.int64)
    return created


def burst_created(
    ctx: Ctx, n: int, n_bursts: int, hours: float, earliest_days: float, latest_days: float
) -> np.ndarray:
    """Sign-ups packed into ``n_bursts`` bursts of ``hours`` each, between ``earliest_days`` and
    ``latest_days`` before the end of the window."""
    rng = ctx.rng
    at = ctx.end - (rng.uniform(latest_days, earliest_days, n_bursts) * DAY).astype(np.int64)
    which = rng.integers(0, n_bursts, n)
    return at[which] + (rng.random(n) * hours * HOUR).astype(np.int64)


def cards(rng: np.random.Generator, owners: np.ndarray) -> np.ndarray:
    """Payment fingerprints: one per distinct value of ``owners`` (-1 means no card)."""
    out = np.full(len(owners), None, dtype=object)
    has = owners >= 0
    uniq, inv = np.unique(owners[has], return_inverse=True)
    out[has] = hex_ids("pm_", len(uniq), rng, 16)[inv]
    return out


def account_frame(
    *,
    created: np.ndarray,
    org_id: np.ndarray,
    email_domain: np.ndarray,
    payment: np.ndarray,
    signup_ip: np.ndarray,
    country: np.ndarray,
    role: str,
    kind: str,
    group: np.ndarray | str | None,
) -> pd.DataFrame:
    """Contract account columns (without ids) plus the truth columns."""
    n = len(created)
    return pd.DataFrame(
        {
            "created_at": np.asarray(created, dtype=np.int64),
            "org_id": np.asarray(org_id, dtype=object),
            "email_domain": np.asarray(email_domain, dtype=object),
            "payment_fingerprint": np.asarray(payment, dtype=object),
            "signup_ip": np.asarray(signup_ip, dtype=object),
            "country": np.asarray(country, dtype=object),
            "role": role,
            "kind": kind,
            "group": np.asarray(group, dtype=object) if isinstance(group, np.ndarray) else group,
        },
        index=pd.RangeIndex(n),
    )


def volumes(rng: np.random.Generator, n: int, mean: float, sigma: float = 1.15) -> np.ndarray:
    """Heavy-tailed request counts (lognormal) with the given mean, at least 1."""
    mu = np.log(max(mean, 1.0)) - sigma**2 / 2
    return np.maximum(1, np.round(rng.lognormal(mu, sigma, n))).astype(np.int64)


# ---- per-request choices ------------------------------------------------------------------


def pick(
    option_account: np.ndarray,
    option_value: np.ndarray,
    option_weight: np.ndarray,
    account: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """For each request of ``account``, one of its account's options, chosen by weight.

    Every account that makes a request must have at least one option.

    >>> v = pick(np.array([0, 0, 1]), np.array(["a", "b", "c"], object), np.array([1., 0., 1.]),
    ...          np.array([0, 1, 0]), np.random.default_rng(0))
    >>> v.tolist()
    ['a', 'c', 'a']
    """
    order = np.argsort(option_account, kind="stable")
    acc, val, w = option_account[order], option_value[order], option_weight[order]
    cw = np.cumsum(w)
    n_acc = int(max(acc.max(initial=-1), account.max(initial=-1))) + 1
    first = np.searchsorted(acc, np.arange(n_acc), side="left")
    last = np.searchsorted(acc, np.arange(n_acc), side="right")
    base = np.where(first > 0, cw[np.maximum(first - 1, 0)], 0.0)
    total = cw[np.maximum(last - 1, 0)] - base
    target = base[account] + rng.random(len(account)) * total[account]
    idx = np.searchsorted(cw, target, side="right")
    idx = np.clip(idx, first[account], last[account] - 1)
    return val[idx]


def prompt_columns(
    ctx: Ctx,
    free_kind: np.ndarray,
    templated: np.ndarray,
    t_key: np.ndarray,
    t_kind: np.ndarray,
    *,
    t_rates: tuple[float, float, float],
    noise: tuple[float, float] = (0.3, 0.02),
) -> dict[str, np.ndarray]:
    """Prompt description columns: kind, skeleton key and optional parts per request.

    Free rows get a fresh key and the parts people add now and then (reasoning questions ask
    for the steps more often); templated rows take ``t_key``/``t_kind`` and parts fixed per
    template with rates ``t_rates`` = (preamble, cot, format).
    """
    rng = ctx.rng
    n = len(free_kind)
    kind = np.where(templated, t_kind, free_kind).astype(np.int8)
    key = np.where(templated, t_key, ctx.keys(n)).astype(np.uint64)
    u = rng.random((3, n))
    cot_free = np.where(free_kind == KIND["reasoning"], 0.3, 0.03)
    pre = np.where(templated, template_flags(key, t_rates[0], "preamble"), u[0] < 0.05)
    cot = np.where(templated, template_flags(key, t_rates[1], "cot"), u[1] < cot_free)
    fmt = np.where(templated, template_flags(key, t_rates[2], "format"), u[2] < 0.06)
    noisy = rng.random(n) < np.where(templated, noise[1], noise[0])
    return {"kind": kind, "key": key, "pre": pre, "cot": cot, "fmt": fmt, "noise": noisy}


def kind_tables(rng: np.random.Generator, weights: np.ndarray, slots: int = 64) -> np.ndarray:
    """Per-account lookup tables of prompt kinds drawn from each row of ``weights``.

    A request picks a random slot of its account's table: a cheap way to sample per-account
    categorical mixes for millions of requests.
    """
    cum = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    u = rng.random((len(weights), slots))
    return (u[:, :, None] > cum[:, None, :]).sum(axis=2).astype(np.int8)


def sample_kinds(rng: np.random.Generator, tables: np.ndarray, account: np.ndarray) -> np.ndarray:
    return tables[account, rng.integers(0, tables.shape[1], len(account))]


def statuses(rng: np.random.Generator, n: int, throttled: float = 0.01) -> np.ndarray:
    """HTTP statuses: mostly 200, some 429 (rate limited), a few 400 and 500."""
    u = rng.random(n)
    return np.select(
        [u < throttled, u < throttled + 0.005, u < throttled + 0.007], [429, 400, 500], 200
    ).astype(np.int16)


def legit_models(rng: np.random.Generator, n_accounts: int, account: np.ndarray) -> np.ndarray:
    """Each account mostly uses its favourite model."""
    favourite = rng.choice(len(MODELS), n_accounts, p=_LEGIT_MODEL_P)
    other = rng.choice(len(MODELS), len(account), p=_LEGIT_MODEL_P)
    return MODELS[np.where(rng.random(len(account)) < 0.8, favourite[account], other)]


def request_frame(
    account: np.ndarray,
    ts: np.ndarray,
    ip: np.ndarray,
    user_agent: np.ndarray,
    tls: np.ndarray,
    model: np.ndarray,
    api_key: np.ndarray,
    status: np.ndarray,
    prompt: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """A cohort's request columns (local account index, api key slot 0-2, prompt description).

    Plain arrays rather than a DataFrame: cohorts are concatenated and converted once.
    """
    return {
        "account": account.astype(np.int64),
        "ts": ts.astype(np.int64),
        "ip": np.asarray(ip, dtype=object),
        "user_agent": np.asarray(user_agent, dtype=object),
        "tls_fingerprint": np.asarray(tls, dtype=object),
        "model": np.asarray(model, dtype=object),
        "api_key": api_key.astype(np.int8),
        "status": status,
        **prompt,
    }


def home_ips(rng: np.random.Generator, n: int, v6_share: float = 0.2) -> np.ndarray:
    """Home lines: mostly IPv4, some IPv6."""
    ips = residential_ips(n, rng)
    v6 = rng.random(n) < v6_share
    ips[v6] = ipv6_ips(int(v6.sum()), rng)
    return ips
