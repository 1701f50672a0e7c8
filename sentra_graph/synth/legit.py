"""Legit traffic: organic users and the legit look-alikes of farms.

Every legit cohort starts from :func:`people` (organic defaults) and changes what makes it look
like a farm: a shared NAT, a shared card, a shared template, a sign-up burst, a huge volume.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from sentra_graph.synth.cohort import (
    DISPOSABLE_MAIL,
    Cohort,
    Ctx,
    account_frame,
    burst_created,
    cards,
    company_domains,
    countries,
    free_mail,
    history_created,
    home_ips,
    kind_tables,
    legit_models,
    pick,
    prompt_columns,
    request_frame,
    residential_ips,
    sample_kinds,
    statuses,
    volumes,
)
from sentra_graph.synth.network import (
    CLIENT_NAMES,
    LEGIT_CLIENT_SHARE,
    block_ips,
    client_identity,
    cloud_ips,
    hex_ids,
    tls_of,
)
from sentra_graph.synth.prompts import KIND, KINDS, LEGIT_KIND_WEIGHTS
from sentra_graph.synth.timing import DAY, sessions

__all__ = [
    "benchmark_user",
    "campus",
    "enterprise",
    "families",
    "ide_plugin",
    "mobile_nat",
    "organic",
]

IDE_USER_AGENT = "CodeMate/2.3.1 (vscode 1.95.3; node 20.18.0)"
"""The IDE plugin's user agent: identical for every one of its users."""


@dataclass
class People:
    """Legit accounts before their traffic exists (every array has one entry per account)."""

    country: np.ndarray
    tz: np.ndarray
    created: np.ndarray
    org_id: np.ndarray
    email: np.ndarray
    card: np.ndarray
    signup_ip: np.ndarray
    counts: np.ndarray
    diurnal: np.ndarray
    kinds: np.ndarray
    t_key: np.ndarray
    t_kind: np.ndarray
    t_share: np.ndarray
    n_keys: np.ndarray
    ips: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    clients: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = field(
        default_factory=list
    )
    t_rates: tuple[float, float, float] = (0.4, 0.1, 0.4)
    t_pool: tuple[np.ndarray, np.ndarray] | None = None
    """Optional (keys, kinds) of templates shared by the cohort: templated requests then pick
    one of them at random instead of their account's ``t_key``."""
    session_size: float = 6.0
    gap_seconds: float = 45.0

    @property
    def n(self) -> int:
        return len(self.created)

    def add_ips(self, accounts: np.ndarray, values: np.ndarray, weight: float) -> None:
        """Give ``accounts`` the address ``values`` (one per account) with a usage weight."""
        self.ips.append((accounts, np.asarray(values, object), np.full(len(accounts), weight)))

    def add_clients(
        self, accounts: np.ndarray, names: np.ndarray, weight: float, rng: np.random.Generator
    ) -> None:
        """Give ``accounts`` a client library each (user agent version drawn per account)."""
        ua, tls = client_identity(names, rng)
        self.clients.append((accounts, ua, tls, np.full(len(accounts), weight)))


def people(ctx: Ctx, n: int, *, country: str | None = None, in_window: float = 0.08) -> People:
    """``n`` organic-looking accounts: homes, phones, servers, SDKs and their own interests."""
    rng = ctx.rng
    country_arr, tz = countries(rng, n, country)
    created = history_created(ctx, n, in_window)
    email = free_mail(rng, n)
    u = rng.random(n)
    email[u < 0.22] = company_domains(rng, int((u < 0.22).sum()))
    email[u > 0.97] = rng.choice(DISPOSABLE_MAIL, int((u > 0.97).sum()))
    card = cards(rng, np.where(rng.random(n) < 0.55, np.arange(n), -1))
    home = home_ips(rng, n)
    signup = home.copy()
    u = rng.random(n)
    signup[u < 0.10] = residential_ips(int((u < 0.10).sum()), rng)
    signup[u > 0.95] = None
    counts = volumes(rng, n, ctx.rpa)
    counts[(created >= ctx.start) & (rng.random(n) < 0.25)] = 0
    alpha = LEGIT_KIND_WEIGHTS[: KIND["exam"] + 1] * 4
    weights = np.zeros((n, len(KINDS)))
    weights[:, : len(alpha)] = rng.dirichlet(alpha, n)
    personal = rng.random(n) < 0.12
    t_key = np.where(personal, ctx.keys(n), 0).astype(np.uint64)
    p = People(
        country=country_arr,
        tz=tz,
        created=created,
        org_id=np.full(n, None, dtype=object),
        email=email,
        card=card,
        signup_ip=signup,
        counts=counts,
        diurnal=np.ones(n, dtype=bool),
        kinds=kind_tables(rng, weights),
        t_key=t_key,
        t_kind=sample_kinds(rng, kind_tables(rng, weights, 1), np.arange(n)),
        t_share=np.where(personal, rng.uniform(0.3, 0.9, n), 0.0),
        n_keys=rng.integers(1, 4, n),
    )
    everyone = np.arange(n)
    p.add_ips(everyone, home, 1.0)
    _sometimes(p, rng, 0.30, 0.4, lambda k: home_ips(rng, k))
    carrier_ips = np.concatenate(ctx.pools.carriers)
    _sometimes(p, rng, 0.25, 0.3, lambda k: rng.choice(carrier_ips, k))
    _sometimes(p, rng, 0.12, 2.0, lambda k: cloud_ips(k, rng))
    _sometimes(p, rng, 0.03, 1.5, lambda k: rng.choice(ctx.pools.paas, k))
    _sometimes(p, rng, 0.02, 1.0, lambda k: rng.choice(ctx.pools.proxies, k))
    names = np.array(CLIENT_NAMES, object)
    p.add_clients(everyone, rng.choice(names, n, p=LEGIT_CLIENT_SHARE), 1.0, rng)
    second = np.flatnonzero(rng.random(n) < 0.3)
    p.add_clients(second, rng.choice(names, len(second), p=LEGIT_CLIENT_SHARE), 0.3, rng)
    return p


def _sometimes(
    p: People,
    rng: np.random.Generator,
    share: float,
    weight: float,
    make: Callable[[int], np.ndarray],
) -> None:
    """Give a random ``share`` of accounts one more address from ``make(k)``."""
    chosen = np.flatnonzero(rng.random(p.n) < share)
    if len(chosen):
        p.add_ips(chosen, make(len(chosen)), weight)


def traffic(ctx: Ctx, p: People, *, role: str, kind: str, group: np.ndarray | str | None) -> Cohort:
    """Generate the requests of legit accounts ``p`` and pack them as a cohort."""
    rng = ctx.rng
    start = np.maximum(p.created, ctx.start)
    p.counts[(p.created < ctx.start) & (p.counts == 0)] = 1
    parts = []
    for diurnal in (True, False):
        idx = np.flatnonzero(p.diurnal == diurnal)
        if len(idx):
            acc, ts = sessions(
                p.counts[idx], start[idx], ctx.end, p.tz[idx], rng,
                session_size=p.session_size, gap_seconds=p.gap_seconds, diurnal=diurnal,
            )  # fmt: skip
            parts.append((idx[acc], ts))
    account = np.concatenate([a for a, _ in parts])
    ts = np.concatenate([t for _, t in parts])
    ip_acc, ip_val, ip_w = (np.concatenate(c) for c in zip(*p.ips, strict=True))
    ip = pick(ip_acc, ip_val, ip_w, account, rng)
    c_acc, c_ua, c_tls, c_w = (np.concatenate(c) for c in zip(*p.clients, strict=True))
    client = pick(c_acc, np.arange(len(c_acc)), c_w, account, rng)
    templated = rng.random(len(account)) < p.t_share[account]
    t_key, t_kind = p.t_key[account], p.t_kind[account]
    if p.t_pool is not None:
        which = rng.integers(0, len(p.t_pool[0]), len(account))
        t_key, t_kind = p.t_pool[0][which], p.t_pool[1][which]
    prompt = prompt_columns(
        ctx, sample_kinds(rng, p.kinds, account), templated, t_key, t_kind, t_rates=p.t_rates
    )
    requests = request_frame(
        account, ts, ip, c_ua[client], c_tls[client], legit_models(rng, p.n, account),
        (rng.random(len(account)) * p.n_keys[account]).astype(np.int64),
        statuses(rng, len(account)), prompt,
    )  # fmt: skip
    accounts = account_frame(
        created=p.created, org_id=p.org_id, email_domain=p.email, payment=p.card,
        signup_ip=p.signup_ip, country=p.country, role=role, kind=kind, group=group,
    )  # fmt: skip
    return Cohort(accounts, requests)


def organic(ctx: Ctx, n: int) -> Cohort:
    """Ordinary users: small orgs sharing a card and an office, scripts running on servers."""
    rng = ctx.rng
    p = people(ctx, n)
    in_org = np.flatnonzero(rng.random(n) < 0.15)
    sizes = rng.integers(2, 9, len(in_org))
    org_of = np.repeat(np.arange(len(sizes)), sizes)[: len(in_org)]
    n_orgs = int(org_of.max(initial=-1)) + 1
    org_ids = hex_ids("org_", n_orgs, rng, 10)
    domains = company_domains(rng, n_orgs)
    p.org_id[in_org] = org_ids[org_of]
    p.email[in_org] = domains[org_of]
    shares_card = rng.random(n_orgs) < 0.6
    org_cards = cards(rng, np.where(shares_card, np.arange(n_orgs), -1))
    with_card = shares_card[org_of]
    p.card[in_org[with_card]] = org_cards[org_of[with_card]]
    office = rng.random(n_orgs) < 0.5
    offices = residential_ips(n_orgs, rng)
    at_office = office[org_of]
    p.add_ips(in_org[at_office], offices[org_of[at_office]], 1.5)
    scripts = np.flatnonzero(rng.random(n) < 0.05)
    p.diurnal[scripts] = False
    p.t_key[scripts] = ctx.keys(len(scripts))
    p.t_share[scripts] = 0.9
    p.add_ips(scripts, cloud_ips(len(scripts), rng), 5.0)
    return traffic(ctx, p, role="legit", kind="organic", group=None)


def enterprise(ctx: Ctx, size: int, group: str) -> Cohort:
    """One org openly sharing a card, an office NAT and its product's prompt templates."""
    rng = ctx.rng
    p = people(ctx, size, country=rng.choice(["US", "DE", "GB", "FR", "JP", "IN"]))
    p.org_id[:] = hex_ids("org_", 1, rng, 10)[0]
    p.email[:] = company_domains(rng, 1)[0]
    p.card[:] = cards(rng, np.zeros(1, np.int64))[0]
    onboarding = rng.random(size) < 0.5
    p.created[onboarding] = burst_created(ctx, int(onboarding.sum()), 1, 8, 400, 20)
    nat = block_ips(int(rng.integers(1, 3)), rng)
    p.add_ips(np.arange(size), rng.choice(nat, size), 4.0)
    p.signup_ip[:] = rng.choice(nat, size)
    names = rng.choice(np.array(["openai-python", "python-httpx", "openai-node"], object), size)
    p.add_clients(np.arange(size), names, 6.0, rng)
    products = ctx.keys(int(rng.integers(1, 3)))
    app = rng.random(size) < 0.7
    p.t_key[:] = rng.choice(products, size)
    p.t_kind[:] = KIND["product"]
    p.t_share[:] = np.where(app, rng.uniform(0.5, 0.85, size), 0.0)
    p.t_rates = (0.3, 0.3, 0.5)
    p.counts = volumes(rng, size, 1.5 * ctx.rpa)
    return traffic(ctx, p, role="lookalike", kind="enterprise", group=group)


def campus(ctx: Ctx, size: int, group: str) -> Cohort:
    """Students behind one /24 egress, signed up at semester start, sharing assignments."""
    rng = ctx.rng
    p = people(ctx, size, country=rng.choice(["US", "GB", "DE", "IN", "KR", "BR"]))
    uni = f"{rng.choice(['state', 'tech', 'city', 'north', 'west'])}-u{rng.integers(1, 99)}.edu"
    p.email[rng.random(size) < 0.75] = uni
    p.card[:] = cards(rng, np.where(rng.random(size) < 0.45, np.arange(size), -1))
    semester = rng.random(size) < 0.65
    begins = float(rng.uniform(15, 120))
    p.created[semester] = burst_created(ctx, int(semester.sum()), 1, 14 * 24, begins, begins - 1)
    egress = block_ips(int(rng.integers(4, 13)), rng)
    p.add_ips(np.arange(size), rng.choice(egress, size), 2.5)
    on_campus = rng.random(size) < 0.7
    p.signup_ip[on_campus] = rng.choice(egress, int(on_campus.sum()))
    assignments = ctx.keys(int(rng.integers(2, 4)))
    kinds = rng.choice([KIND["coding"], KIND["reasoning"], KIND["writing"]], len(assignments))
    which = rng.integers(0, len(assignments), size)
    doing = rng.random(size) < 0.5
    p.t_key[doing] = assignments[which[doing]]
    p.t_kind[doing] = kinds[which[doing]]
    p.t_share[doing] = rng.uniform(0.1, 0.4, int(doing.sum()))
    return traffic(ctx, p, role="lookalike", kind="campus", group=group)


def mobile_nat(ctx: Ctx, size: int, group: str) -> Cohort:
    """App users of one mobile carrier: hundreds of unrelated people behind a few NAT IPs."""
    rng = ctx.rng
    p = people(ctx, size, country=rng.choice(["US", "IN", "BR", "ID", "NG", "PH"]))
    nat = block_ips(int(rng.integers(3, 9)), rng)
    p.add_ips(np.arange(size), rng.choice(nat, size), 4.0)
    on_nat = rng.random(size) < 0.6
    p.signup_ip[on_nat] = rng.choice(nat, int(on_nat.sum()))
    names = rng.choice(np.array(["ios", "android", "browser"], object), size, p=[0.45, 0.45, 0.1])
    p.add_clients(np.arange(size), names, 4.0, rng)
    return traffic(ctx, p, role="lookalike", kind="mobile_nat", group=group)


def ide_plugin(ctx: Ctx, size: int, group: str) -> Cohort:
    """Users of one IDE plugin: one user agent and one system-prompt template, unrelated people."""
    rng = ctx.rng
    p = people(ctx, size)
    everyone = np.arange(size)
    p.clients.append(
        (everyone, np.full(size, IDE_USER_AGENT, object), np.full(size, tls_of("openai-node"),
         object), np.full(size, 8.0))
    )  # fmt: skip
    p.t_key[:] = ctx.keys(1)[0]
    p.t_kind[:] = KIND["ide"]
    p.t_share[:] = rng.uniform(0.6, 0.95, size)
    p.t_rates = (0.0, 0.0, 0.0)
    return traffic(ctx, p, role="lookalike", kind="ide_plugin", group=group)


def families(ctx: Ctx, n: int, first_group: int) -> Cohort:
    """Households of 2-4 accounts sharing a card and a home line (no org)."""
    rng = ctx.rng
    sizes = rng.integers(2, 5, n)
    fam = np.repeat(np.arange(n), sizes)[:n]
    if n >= 2 and (fam == fam[-1]).sum() == 1:  # no household of one
        if (fam == fam[-2]).sum() > 2:
            fam[-2] = fam[-1]
        else:
            fam[-1] = fam[-2]
    n_fam = int(fam.max(initial=-1)) + 1
    country, tz = countries(rng, n_fam)
    p = people(ctx, n)
    p.country, p.tz = country[fam], tz[fam]
    p.card[:] = cards(rng, fam)
    homes = home_ips(rng, n_fam)
    p.add_ips(np.arange(n), homes[fam], 2.0)
    p.signup_ip[:] = homes[fam]
    groups = np.array([f"family-{first_group + f}" for f in fam], dtype=object)
    return traffic(ctx, p, role="lookalike", kind="family", group=groups)


def benchmark_user(ctx: Ctx, group: str) -> Cohort:
    """One researcher running evaluations: a huge volume of rubric and chain-of-thought prompts."""
    rng = ctx.rng
    p = people(ctx, 1, in_window=0.0)
    p.counts[:] = int(min(0.03 * ctx.n_accounts * ctx.rpa, 400 * ctx.rpa) * rng.uniform(0.6, 1.2))
    p.diurnal[:] = False
    p.session_size, p.gap_seconds = 400.0, 2.0
    p.add_ips(np.zeros(3, np.int64), cloud_ips(3, rng), 20.0)
    p.add_clients(np.zeros(1, np.int64), np.array(["python-httpx"], object), 50.0, rng)
    evals = ctx.keys(int(rng.integers(2, 5)))
    kinds = rng.choice([KIND["eval"], KIND["exam"], KIND["reasoning"]], len(evals))
    kinds[0] = KIND["eval"]
    p.t_pool = (evals, kinds)
    p.t_share[:] = 0.95
    p.t_rates = (0.3, 0.8, 0.7)
    p.created[:] = ctx.start - int(rng.uniform(30, 700) * DAY)
    return traffic(ctx, p, role="lookalike", kind="benchmark", group=group)
