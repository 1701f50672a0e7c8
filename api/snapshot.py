"""The served decisions, held in memory as an immutable snapshot swapped in one assignment.

A :class:`Snapshot` is built from the store in a worker thread when a newer run is published;
every answer of a scored account is encoded to JSON at build time, so a lookup is one dict get
and never touches the database.

>>> snap = Snapshot.empty()
>>> snap.lookup("acct-1").decision, snap.lookup("acct-1").known
('allow', False)
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import pandas as pd

from api.schemas import DECISIONS, RiskResult
from sentra_graph.store import Store

ALLOW = "allow"
UNSCORED_SCORE = "0.0"
"""Score header of an account with no decision: never seen, or seen but never scored."""


class Entry(NamedTuple):
    """One account's answer: the JSON body and the two gateway header values."""

    body: bytes
    decision: str
    score: str
    known: bool


_UNSCORED_TAIL = (
    ',"score":0.0,"decision":"allow","cluster_id":null,"reasons":[],"run_id":null,"scored_at":null}'
)
_KNOWN_TAIL = (',"known":true' + _UNSCORED_TAIL).encode()
_UNKNOWN_TAIL = (',"known":false' + _UNSCORED_TAIL).encode()


def _unscored(account_id: str, known: bool) -> Entry:
    body = (
        b'{"account_id":'
        + json.dumps(account_id).encode()
        + (_KNOWN_TAIL if known else _UNKNOWN_TAIL)
    )
    return Entry(body, ALLOW, UNSCORED_SCORE, known)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one published run makes the API answer; never mutated after it is built.

    ``entries`` holds every account with a served decision, ``known`` every account the store
    has seen, ``counts`` the served decisions by kind.
    """

    run_id: str | None
    published_at: dt.datetime | None
    loaded_at: dt.datetime
    entries: Mapping[str, Entry] = field(repr=False)
    known: frozenset[str] = field(repr=False)
    counts: Mapping[str, int]

    @classmethod
    def empty(cls) -> Snapshot:
        """The snapshot of a store with no published run: everyone is allowed."""
        now = dt.datetime.now(dt.UTC)
        return cls(None, None, now, {}, frozenset(), dict.fromkeys(DECISIONS, 0))

    def lookup(self, account_id: str) -> Entry:
        """The answer for one account; an account without a decision is allowed with score 0."""
        entry = self.entries.get(account_id)
        if entry is not None:
            return entry
        return _unscored(account_id, account_id in self.known)

    def batch_body(self, account_ids: Iterable[str]) -> tuple[bytes, Counter[str]]:
        """The JSON body ``{"results": [...]}`` in the order asked, and its decisions by kind.

        >>> body, counts = Snapshot.empty().batch_body(["a", "b"])
        >>> [r["account_id"] for r in json.loads(body)["results"]], counts["allow"]
        (['a', 'b'], 2)
        """
        entries = [self.lookup(account_id) for account_id in account_ids]
        counts = Counter(entry.decision for entry in entries)
        return b'{"results":[' + b",".join(entry.body for entry in entries) + b"]}", counts


def encode_decisions(decisions: pd.DataFrame) -> dict[str, Entry]:
    """Encode served decisions (``Store.current_decisions()`` columns) to per-account answers.

    A scored account is known by definition.

    >>> frame = pd.DataFrame({"account_id": ["a"], "run_id": ["r1"], "score": [0.9],
    ...     "decision": ["block"], "cluster_id": ["c1"], "reasons": [["shares a card"]],
    ...     "scored_at": [pd.Timestamp("2026-01-02T03:04:05Z")]})
    >>> entry = encode_decisions(frame)["a"]
    >>> entry.decision, entry.score, json.loads(entry.body)["scored_at"]
    ('block', '0.9', '2026-01-02T03:04:05Z')
    """
    columns = ["account_id", "run_id", "score", "decision", "cluster_id", "reasons", "scored_at"]
    frame = decisions[columns].astype(object).where(decisions[columns].notna(), None)
    entries: dict[str, Entry] = {}
    for account_id, run_id, score, decision, cluster_id, reasons, scored_at in frame.itertuples(
        index=False, name=None
    ):
        result = RiskResult(
            account_id=account_id,
            known=True,
            score=score,
            decision=decision,
            cluster_id=cluster_id,
            reasons=list(reasons or ()),
            run_id=run_id,
            scored_at=scored_at.to_pydatetime() if scored_at is not None else None,
        )
        entries[account_id] = Entry(
            result.model_dump_json().encode(), result.decision, repr(result.score), True
        )
    return entries


def build_snapshot(store: Store) -> Snapshot:
    """Read the published run's served decisions and known accounts into a new snapshot.

    The run is read first: should a newer run be published meanwhile, the decisions read are
    at least as new as the run id recorded, and the next poll loads it again.
    """
    run = store.latest_published_run()
    decisions = store.current_decisions()
    known = frozenset(store.known_accounts().tolist())
    entries = encode_decisions(decisions)
    counts = dict.fromkeys(DECISIONS, 0)
    counts.update(Counter(entry.decision for entry in entries.values()))
    return Snapshot(
        run_id=run["run_id"] if run else None,
        published_at=run["published_at"] if run else None,
        loaded_at=dt.datetime.now(dt.UTC),
        entries=entries,
        known=known | frozenset(entries),
        counts=counts,
    )
