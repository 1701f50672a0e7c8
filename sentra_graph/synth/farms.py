"""Farms: coordinated accounts distilling the model, each kind hiding a different way.

Which signals a farm leaves (cards, sign-up bursts, proxy reuse, lockstep timing, a rare TLS
stack, fake orgs) is drawn per farm, so no single signal separates every farm from legit users.
Their prompts come from the legit grammar; what gives them away is structure: a few skeletons
repeated across many accounts, chain-of-thought and rubric instructions, reasoning and coding.
"""

from __future__ import annotations

import numpy as np

from sentra_graph.synth.cohort import (
    DISPOSABLE_MAIL,
    MODELS,
    Cohort,
    Ctx,
    account_frame,
    burst_created,
    cards,
    countries,
    free_mail,
    kind_tables,
    pick,
    prompt_columns,
    request_frame,
    sample_kinds,
    statuses,
    volumes,
)
from sentra_graph.synth.network import (
    CLIENT_NAMES,
    block_ips,
    client_identity,
    cloud_ips,
    hex_ids,
    rare_tls,
    residential_ips,
    tls_of,
)
from sentra_graph.synth.prompts import KIND, KINDS, LEGIT_KIND_WEIGHTS
from sentra_graph.synth.timing import DAY, bursts, lockstep, sessions, uniform

__all__ = ["cell", "hydra", "mixed", "rubric", "slow_low"]

_DISTILL_KINDS = np.array([KIND["reasoning"], KIND["coding"], KIND["qa"], KIND["tool"]])
_DISTILL_P = np.array([0.5, 0.32, 0.12, 0.06])
CELL_PROFILES = ("card", "signup_block", "shared_ip", "full")
"""Which signals a small cell leaves: only cards; only a sign-up /24 and lockstep timing;
only shared request IPs and lockstep; all of them."""


def _identity(ctx: Ctx, size: int, *, card_ratio: tuple[int, int], coverage: float) -> dict:
    """E-mail, org, country and cards of a farm (its style drawn per farm)."""
    rng = ctx.rng
    style = rng.choice(["free", "disposable", "custom"], p=[0.55, 0.25, 0.2])
    if style == "free":
        email = free_mail(rng, size)
    elif style == "disposable":
        email = rng.choice(rng.choice(DISPOSABLE_MAIL, 3, replace=False), size)
    else:
        email = np.full(size, f"{rng.choice(['mx', 'inbox', 'post'])}{rng.integers(10, 99)}.net")
    fake_orgs = rng.random() < 0.25
    org = hex_ids("org_", size, rng, 10) if fake_orgs else np.full(size, None, dtype=object)
    exits = rng.choice(["US", "GB", "DE", "IN", "BR", "CA", "FR"], int(rng.integers(1, 4)))
    country = np.empty(size, dtype=object)
    tz = np.empty(size)
    which = rng.integers(0, len(exits), size)
    for i, code in enumerate(exits):
        country[which == i], tz[which == i] = countries(rng, int((which == i).sum()), code)
    n_cards = max(1, size // int(rng.integers(*card_ratio)))
    owners = np.where(rng.random(size) < coverage, rng.integers(0, n_cards, size), -1)
    return {"email": email, "org": org, "country": country, "tz": tz, "card": cards(rng, owners)}


def _proxy_pool(ctx: Ctx, size: int) -> np.ndarray:
    """Residential proxy exits a farm rotates through (partly the shared provider's)."""
    rng = ctx.rng
    shared = rng.choice(ctx.pools.proxies, max(1, size // 3))
    return np.concatenate([shared, residential_ips(max(1, size - len(shared)), rng)])


def _templates(ctx: Ctx, n: int, kinds: np.ndarray, p: np.ndarray) -> tuple:
    return ctx.keys(n), ctx.rng.choice(kinds, n, p=p / p.sum())


def _prompts(
    ctx: Ctx,
    account: np.ndarray,
    n_accounts: int,
    templates: tuple[np.ndarray, np.ndarray],
    share: float,
    t_rates: tuple[float, float, float],
    camouflage: bool,
) -> dict[str, np.ndarray]:
    """Templated distillation prompts; the rest camouflage (legit-like) or free distillation."""
    rng = ctx.rng
    if camouflage:
        alpha = LEGIT_KIND_WEIGHTS[: KIND["exam"] + 1] * 4
        weights = np.zeros((n_accounts, len(KINDS)))
        weights[:, : len(alpha)] = rng.dirichlet(alpha, n_accounts)
    else:
        weights = np.zeros((n_accounts, len(KINDS)))
        weights[:, _DISTILL_KINDS] = _DISTILL_P
    free = sample_kinds(rng, kind_tables(rng, weights), account)
    which = rng.integers(0, len(templates[0]), len(account))
    templated = rng.random(len(account)) < share
    return prompt_columns(
        ctx, free, templated, templates[0][which], templates[1][which], t_rates=t_rates,
        noise=(0.3 if camouflage else 0.1, float(rng.uniform(0.0, 0.08))),
    )  # fmt: skip


def _models(rng: np.random.Generator, n: int) -> np.ndarray:
    p = rng.dirichlet([1.0, 3.0, 3.0])
    return rng.choice(MODELS, n, p=p)


def _reserve(ctx: Ctx, created: np.ndarray, share: float) -> np.ndarray:
    """Mark a ``share`` of accounts as reserves: signed up inside the window, never used yet."""
    rng = ctx.rng
    spare = rng.random(len(created)) < share
    created[spare] = burst_created(ctx, int(spare.sum()), 1, 3, ctx.days * 0.9, 0.2)
    return spare


def _pack(
    ctx: Ctx, ident: dict, created: np.ndarray, signup_ip: np.ndarray, kind: str, group: str,
    requests,
) -> Cohort:  # fmt: skip
    accounts = account_frame(
        created=created, org_id=ident["org"], email_domain=ident["email"],
        payment=ident["card"], signup_ip=signup_ip, country=ident["country"], role="farm",
        kind=kind, group=group,
    )  # fmt: skip
    return Cohort(accounts, requests)


def hydra(ctx: Ctx, size: int, group: str) -> Cohort:
    """A large farm on rotating residential proxies: few cards, sign-up bursts, synchronized
    bursts of chain-of-thought prompts, randomised user agents over one TLS stack."""
    rng = ctx.rng
    ident = _identity(ctx, size, card_ratio=(8, 40), coverage=float(rng.uniform(0.5, 1.0)))
    created = burst_created(ctx, size, int(rng.integers(1, 4)), float(rng.uniform(1, 6)), 60, 1)
    spare = _reserve(ctx, created, float(rng.uniform(0.0, 0.06)))
    pool = _proxy_pool(ctx, max(10, int(size * rng.uniform(0.3, 1.0))))
    signup_ip = rng.choice(pool, size)
    n_bursts = max(3, int(ctx.days * rng.uniform(2, 6)))
    participation = float(rng.uniform(0.4, 0.9))
    per_burst = 1.5 * ctx.rpa * rng.uniform(0.7, 1.3) / (n_bursts * participation)
    start = np.where(spare, ctx.end, np.maximum(created, ctx.start))
    account, ts, burst = bursts(
        size, start, ctx.start, ctx.end, rng, n_bursts=n_bursts, minutes=(5, 40),
        participation=participation, per_burst=per_burst,
    )  # fmt: skip
    pair, inverse = np.unique(account * n_bursts + burst, return_inverse=True)
    ip = pool[rng.integers(0, len(pool), len(pair))][inverse]
    ua, _ = client_identity(rng.choice(np.array(CLIENT_NAMES, object), len(account)), rng)
    tls = rare_tls(rng) if rng.random() < 0.5 else tls_of("python-requests")
    templates = _templates(ctx, int(rng.integers(3, 9)), _DISTILL_KINDS, _DISTILL_P)
    prompt = _prompts(ctx, account, size, templates, 0.9, (0.5, 0.85, 0.6), camouflage=False)
    throttled = float(rng.uniform(0.03, 0.12))
    requests = request_frame(
        account, ts, ip, ua, np.full(len(account), tls, object), _models(rng, len(account)),
        np.zeros(len(account), np.int64), statuses(rng, len(account), throttled), prompt,
    )  # fmt: skip
    return _pack(ctx, ident, created, signup_ip, "hydra", group, requests)


def mixed(ctx: Ctx, size: int, group: str) -> Cohort:
    """A farm hiding distillation among camouflage: normal-looking prompts interleaved, human
    rhythms, one SDK; linked by a few cards and overlapping proxy exits."""
    rng = ctx.rng
    ident = _identity(ctx, size, card_ratio=(4, 12), coverage=float(rng.uniform(0.7, 1.0)))
    created = burst_created(ctx, size, int(rng.integers(3, 7)), 2, 60, 3)
    pool = _proxy_pool(ctx, max(6, int(size * rng.uniform(0.4, 0.8))))
    counts = volumes(rng, size, 1.2 * ctx.rpa, sigma=0.6)
    account, ts = sessions(counts, np.maximum(created, ctx.start), ctx.end, ident["tz"], rng)
    per = rng.integers(2, 5, size)
    opt_acc = np.repeat(np.arange(size), per)
    ip = pick(opt_acc, rng.choice(pool, len(opt_acc)), rng.random(len(opt_acc)), account, rng)
    client = rng.choice(np.array(["openai-python", "openai-node", "python-httpx"], object))
    ua_acc, tls_acc = client_identity(np.full(size, client, object), rng)
    templates = _templates(ctx, int(rng.integers(2, 6)), _DISTILL_KINDS, _DISTILL_P)
    share = float(rng.uniform(0.35, 0.65))
    prompt = _prompts(ctx, account, size, templates, share, (0.4, 0.8, 0.5), camouflage=True)
    requests = request_frame(
        account, ts, ip, ua_acc[account], tls_acc[account], _models(rng, len(account)),
        rng.integers(0, 2, len(account)), statuses(rng, len(account)), prompt,
    )  # fmt: skip
    return _pack(ctx, ident, created, rng.choice(pool, size), "mixed", group, requests)


def slow_low(ctx: Ctx, size: int, group: str) -> Cohort:
    """Many accounts each far below any rate limit, round the clock, one or two templates,
    sharing a proxy pool and cards; sign-ups spread out in small bursts."""
    rng = ctx.rng
    ident = _identity(ctx, size, card_ratio=(6, 20), coverage=float(rng.uniform(0.6, 1.0)))
    n_signup = max(2, size // int(rng.integers(5, 13)))
    created = burst_created(ctx, size, n_signup, 1, float(rng.uniform(20, 90)), 1)
    spare = _reserve(ctx, created, float(rng.uniform(0.0, 0.08)))
    pool = _proxy_pool(ctx, max(8, int(size * rng.uniform(0.2, 0.5))))
    counts = np.maximum(1, rng.poisson(max(1.0, ctx.rpa * rng.uniform(0.05, 0.2)), size))
    counts[spare] = 0
    account, ts = uniform(counts, np.maximum(created, ctx.start), ctx.end, rng)
    ip = rng.choice(pool, len(account))
    families = rng.choice(np.array(["python-requests", "openai-python", "curl"], object), 2)
    ua_acc, tls_acc = client_identity(rng.choice(families, size), rng)
    templates = _templates(ctx, int(rng.integers(1, 4)), _DISTILL_KINDS, _DISTILL_P)
    prompt = _prompts(ctx, account, size, templates, 0.95, (0.4, 0.7, 0.6), camouflage=False)
    requests = request_frame(
        account, ts, ip, ua_acc[account], tls_acc[account], _models(rng, len(account)),
        np.zeros(len(account), np.int64), statuses(rng, len(account)), prompt,
    )  # fmt: skip
    return _pack(ctx, ident, created, rng.choice(pool, size), "slow_low", group, requests)


def rubric(ctx: Ctx, size: int, group: str) -> Cohort:
    """A reward-model farm: rubric grading and pairwise preference prompts around the clock,
    from a few shared servers or proxies."""
    rng = ctx.rng
    ident = _identity(ctx, size, card_ratio=(5, 15), coverage=float(rng.uniform(0.6, 1.0)))
    created = burst_created(ctx, size, int(rng.integers(1, 3)), 4, 45, 2)
    if rng.random() < 0.5:
        pool = cloud_ips(int(rng.integers(3, 9)), rng)
    else:
        pool = _proxy_pool(ctx, max(6, size // 2))
    counts = volumes(rng, size, 1.5 * ctx.rpa, sigma=0.5)
    account, ts = sessions(
        counts, np.maximum(created, ctx.start), ctx.end, ident["tz"], rng,
        session_size=20, gap_seconds=10, diurnal=False,
    )  # fmt: skip
    ip = rng.choice(pool, len(account))
    ua_acc, tls_acc = client_identity(
        rng.choice(np.array(["python-httpx", "aiohttp", "openai-python"], object), size), rng
    )
    templates = _templates(ctx, int(rng.integers(1, 4)), np.array([KIND["eval"]]), np.ones(1))
    prompt = _prompts(ctx, account, size, templates, 0.9, (0.5, 0.2, 0.6), camouflage=False)
    requests = request_frame(
        account, ts, ip, ua_acc[account], tls_acc[account], _models(rng, len(account)),
        np.zeros(len(account), np.int64), statuses(rng, len(account)), prompt,
    )  # fmt: skip
    return _pack(ctx, ident, created, rng.choice(pool, size), "rubric", group, requests)


def cell(ctx: Ctx, size: int, group: str) -> Cohort:
    """A small cell of 5-15 accounts leaving only some signals (see :data:`CELL_PROFILES`)."""
    rng = ctx.rng
    profile = rng.choice(CELL_PROFILES, p=[0.3, 0.3, 0.2, 0.2])
    shares_card = profile in ("card", "full")
    ident = _identity(
        ctx, size, card_ratio=(size, size + 1) if shares_card else (1, 2), coverage=1.0
    )
    if not shares_card:
        ident["card"] = cards(rng, np.where(rng.random(size) < 0.6, np.arange(size), -1))
    if profile in ("signup_block", "full"):
        created = burst_created(ctx, size, 1, 0.5, float(rng.uniform(3, 40)), 1)
        signup_ip = rng.choice(block_ips(size, rng), size)
    else:
        created = ctx.start - (rng.uniform(1, 200, size) * DAY).astype(np.int64)
        signup_ip = residential_ips(size, rng)
    spare = _reserve(ctx, created, 0.1 if profile != "shared_ip" else 0.0)
    start = np.where(spare, ctx.end, np.maximum(created, ctx.start))
    if profile == "card":
        counts = volumes(rng, size, ctx.rpa, sigma=0.7)
        counts[spare] = 0
        account, ts = sessions(counts, start, ctx.end, ident["tz"], rng)
    else:
        n_events = max(3, int(ctx.days * rng.uniform(2, 8)))
        account, ts = lockstep(
            size, start, ctx.start, ctx.end, rng, n_events=n_events,
            jitter_seconds=float(rng.uniform(2, 20)), participation=0.9, per_event=(1, 3),
        )  # fmt: skip
    if profile in ("shared_ip", "full"):
        ip = rng.choice(residential_ips(int(rng.integers(1, 4)), rng), len(account))
    else:
        homes = residential_ips(size, rng)
        ip = homes[account]
    client = rng.choice(np.array(CLIENT_NAMES, object))
    ua_acc, tls_acc = client_identity(np.full(size, client, object), rng)
    templates = _templates(ctx, int(rng.integers(1, 3)), _DISTILL_KINDS, _DISTILL_P)
    share = float(rng.uniform(0.5, 0.95))
    prompt = _prompts(ctx, account, size, templates, share, (0.4, 0.7, 0.5), camouflage=True)
    requests = request_frame(
        account, ts, ip, ua_acc[account], tls_acc[account], _models(rng, len(account)),
        np.zeros(len(account), np.int64), statuses(rng, len(account)), prompt,
    )  # fmt: skip
    return _pack(ctx, ident, created, signup_ip, "cell", group, requests)
