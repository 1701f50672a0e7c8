"""Request timestamps: human sessions with diurnal rhythms, synchronized bursts, lockstep, drips.

Times are int64 nanoseconds since the epoch (UTC). Every function returns ``(account, ts)``:
the local account index of each request and its time, always inside ``[start[a], end)``.

>>> rng = np.random.default_rng(0)
>>> acc, ts = sessions(np.array([5, 1]), np.array([0, 0]), DAY, np.zeros(2), rng)
>>> np.bincount(acc).tolist(), bool(((ts >= 0) & (ts < DAY)).all())
([5, 1], True)
"""

from __future__ import annotations

import numpy as np

__all__ = ["DAY", "HOUR", "MINUTE", "SECOND", "bursts", "lockstep", "sessions", "uniform"]

SECOND = 1_000_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

DIURNAL = np.array(
    [0.15, 0.1, 0.07, 0.05, 0.05, 0.07, 0.15, 0.35, 0.6, 0.85, 1.0, 1.0,
     0.95, 1.0, 1.0, 0.95, 0.9, 0.8, 0.75, 0.8, 0.85, 0.75, 0.5, 0.3]
)  # fmt: skip
"""Relative activity per local hour of day (people sleep, work and come back in the evening)."""


def _wrap(ts: np.ndarray, start: np.ndarray, end: int) -> np.ndarray:
    """Fold times that ran past ``end`` back into ``[start, end)``."""
    span = np.maximum(end - start, 1)
    return np.where(ts >= end, start + (ts - start) % span, ts)


def _diurnal_starts(
    start: np.ndarray, end: int, tz_hours: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """One time per row in ``[start, end)``, thinned by the local hour's activity."""
    out = start + (rng.random(len(start)) * (end - start)).astype(np.int64)
    todo = np.arange(len(start))
    for _ in range(8):
        local_hour = ((out[todo] // HOUR) + np.round(tz_hours[todo]).astype(np.int64)) % 24
        reject = rng.random(len(todo)) > DIURNAL[local_hour]
        todo = todo[reject]
        if not len(todo):
            break
        out[todo] = start[todo] + (rng.random(len(todo)) * (end - start[todo])).astype(np.int64)
    return out


def _group_offsets(groups: np.ndarray, gaps: np.ndarray) -> np.ndarray:
    """Cumulative sum of ``gaps`` within each run of equal (sorted) ``groups``, from 0."""
    if not len(groups):
        return gaps
    cs = np.cumsum(gaps)
    first = np.r_[True, groups[1:] != groups[:-1]]
    base = np.maximum.accumulate(np.where(first, np.arange(len(groups)), 0))
    return cs - cs[base]


def sessions(
    counts: np.ndarray,
    start: np.ndarray,
    end: int,
    tz_hours: np.ndarray,
    rng: np.random.Generator,
    *,
    session_size: float = 6.0,
    gap_seconds: float = 45.0,
    diurnal: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Human-like sessions: a few bursts of requests, seconds to minutes apart.

    Args:
        counts: requests per account.
        start: earliest time per account (window start or sign-up, ns).
        end: end of the window (ns).
        tz_hours: UTC offset per account, for the diurnal rhythm.
        session_size: mean requests per session.
        gap_seconds: mean gap between requests of a session.
        diurnal: thin session starts by local hour (False: round the clock, e.g. a script).
    """
    counts = np.asarray(counts, dtype=np.int64)
    start = np.asarray(start, dtype=np.int64)
    n_sessions = np.maximum(
        1, np.round(counts / (session_size * rng.uniform(0.5, 1.5, len(counts))))
    )
    n_sessions = np.minimum(n_sessions, np.maximum(counts, 1)).astype(np.int64)
    session_account = np.repeat(np.arange(len(counts)), n_sessions)
    s_start = start[session_account]
    if diurnal:
        begins = _diurnal_starts(s_start, end, np.asarray(tz_hours)[session_account], rng)
    else:
        begins = s_start + (rng.random(len(s_start)) * (end - s_start)).astype(np.int64)
    first_session = np.r_[0, np.cumsum(n_sessions)[:-1]]
    account = np.repeat(np.arange(len(counts)), counts)
    session = first_session[account] + (rng.random(len(account)) * n_sessions[account]).astype(
        np.int64
    )
    session.sort()
    gaps = (rng.exponential(gap_seconds, len(session)) * SECOND).astype(np.int64)
    ts = begins[session] + _group_offsets(session, gaps)
    account = session_account[session]
    return account, _wrap(ts, start[account], end)


def uniform(
    counts: np.ndarray, start: np.ndarray, end: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Requests spread evenly over ``[start, end)`` (a slow drip, round the clock)."""
    counts = np.asarray(counts, dtype=np.int64)
    start = np.asarray(start, dtype=np.int64)
    account = np.repeat(np.arange(len(counts)), counts)
    ts = start[account] + (rng.random(len(account)) * (end - start[account])).astype(np.int64)
    return account, ts


def bursts(
    n_accounts: int,
    start: np.ndarray,
    window_start: int,
    end: int,
    rng: np.random.Generator,
    *,
    n_bursts: int,
    minutes: tuple[float, float],
    participation: float,
    per_burst: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Synchronized bursts: at shared moments many accounts fire together.

    Returns ``(account, ts, burst)``; requests before an account's ``start`` are dropped.
    """
    b_start = window_start + (rng.random(n_bursts) * (end - window_start)).astype(np.int64)
    b_len = (rng.uniform(*minutes, n_bursts) * MINUTE).astype(np.int64)
    joins = rng.random((n_bursts, n_accounts)) < participation
    burst_idx, account = np.nonzero(joins)
    k = rng.poisson(per_burst, len(account))
    burst = np.repeat(burst_idx, k)
    account = np.repeat(account, k)
    ts = b_start[burst] + (rng.random(len(burst)) * b_len[burst]).astype(np.int64)
    keep = (ts >= np.asarray(start)[account]) & (ts < end)
    return account[keep], ts[keep], burst[keep]


def lockstep(
    n_accounts: int,
    start: np.ndarray,
    window_start: int,
    end: int,
    rng: np.random.Generator,
    *,
    n_events: int,
    jitter_seconds: float,
    participation: float,
    per_event: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Accounts driven by one script: each event fires (almost) every account within seconds."""
    events = window_start + (rng.random(n_events) * (end - window_start)).astype(np.int64)
    joins = rng.random((n_events, n_accounts)) < participation
    event, account = np.nonzero(joins)
    k = rng.integers(per_event[0], per_event[1] + 1, len(account))
    event = np.repeat(event, k)
    account = np.repeat(account, k)
    step = np.arange(len(event)) - np.repeat(np.cumsum(k) - k, k)
    jitter = np.abs(rng.normal(0, jitter_seconds, len(event))) + step * rng.uniform(
        5, 40, len(event)
    )
    ts = events[event] + (jitter * SECOND).astype(np.int64)
    keep = (ts >= np.asarray(start)[account]) & (ts < end)
    return account[keep], ts[keep]
