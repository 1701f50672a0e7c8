"""The served decisions, held in memory as an immutable snapshot swapped in one assignment.

Every scored account's answer is encoded to JSON once, when the snapshot is built, so a lookup
is a dict get and a slice of one large buffer; it never touches the database.

Building is split in two so that the server's interpreter lock stays with lookups:
:func:`load_packed` reads the store and encodes every answer (seconds of CPU for 100k accounts;
run it in another process), and gives back a :class:`Packed` made of a few large buffers, cheap
to pickle; :func:`unpack` turns it into a :class:`Snapshot` in chunks, pausing between them.

>>> snap = Snapshot.empty()
>>> snap.lookup("acct-1").decision, snap.lookup("acct-1").known
('allow', False)
"""

from __future__ import annotations

import datetime as dt
import json
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Set
from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar

import pandas as pd

from api.schemas import DECISIONS, RiskResult
from sentra_graph.store import Store, open_store

ALLOW = "allow"
CHUNK = 10_000
"""Accounts per chunk of ids; :func:`unpack` pauses between chunks."""

_CODES = {decision: code for code, decision in enumerate(DECISIONS)}
T = TypeVar("T")


class Entry(NamedTuple):
    """One account's answer: the JSON body, the decision and score (gateway headers), known."""

    body: bytes
    decision: str
    score: float
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
    return Entry(body, ALLOW, 0.0, known)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one published run makes the API answer; never mutated after it is built.

    Scored account ``i`` (``index[account_id]``) answers ``bodies[offsets[i]:offsets[i+1]]``
    with decision ``DECISIONS[codes[i]]`` and score ``scores[i]``; ``unscored_known`` holds the
    accounts the store has seen but no served decision covers.
    """

    run_id: str | None
    published_at: dt.datetime | None
    loaded_at: dt.datetime
    index: Mapping[str, int] = field(repr=False)
    bodies: bytes = field(repr=False)
    offsets: array[int] = field(repr=False)
    codes: bytes = field(repr=False)
    scores: array[float] = field(repr=False)
    unscored_known: Set[str] = field(repr=False)
    counts: Mapping[str, int]

    @classmethod
    def empty(cls) -> Snapshot:
        """The snapshot of a store with no published run: everyone is allowed."""
        now = dt.datetime.now(dt.UTC)
        counts = dict.fromkeys(DECISIONS, 0)
        return cls(None, None, now, {}, b"", array("q", [0]), b"", array("d"), set(), counts)

    @property
    def scored(self) -> int:
        return len(self.index)

    @property
    def known(self) -> int:
        return len(self.index) + len(self.unscored_known)

    def scored_entry(self, account_id: str) -> Entry | None:
        """The answer of a scored account, or None."""
        i = self.index.get(account_id)
        if i is None:
            return None
        body = self.bodies[self.offsets[i] : self.offsets[i + 1]]
        return Entry(body, DECISIONS[self.codes[i]], self.scores[i], True)

    def lookup(self, account_id: str) -> Entry:
        """The answer for one account; an account without a decision is allowed with score 0."""
        entry = self.scored_entry(account_id)
        if entry is not None:
            return entry
        return _unscored(account_id, account_id in self.unscored_known)

    def batch_body(self, account_ids: Iterable[str]) -> tuple[bytes, Counter[str]]:
        """The JSON body ``{"results": [...]}`` in the order asked, and its decisions by kind.

        >>> body, counts = Snapshot.empty().batch_body(["a", "b"])
        >>> [r["account_id"] for r in json.loads(body)["results"]], counts["allow"]
        (['a', 'b'], 2)
        """
        entries = [self.lookup(account_id) for account_id in account_ids]
        counts = Counter(entry.decision for entry in entries)
        return b'{"results":[' + b",".join(entry.body for entry in entries) + b"]}", counts


@dataclass(frozen=True)
class Packed:
    """A snapshot as a few large buffers: cheap to pickle between processes.

    ``id_chunks`` and ``unscored_chunks`` are JSON arrays of account ids, :data:`CHUNK` each.
    """

    run_id: str | None
    published_at: dt.datetime | None
    id_chunks: list[bytes]
    bodies: bytes
    offsets: array[int]
    codes: bytes
    scores: array[float]
    unscored_chunks: list[bytes]
    counts: dict[str, int]


def _chunks(ids: list[str]) -> list[bytes]:
    return [json.dumps(ids[i : i + CHUNK]).encode() for i in range(0, len(ids), CHUNK)]


def pack(run: Mapping[str, object] | None, decisions: pd.DataFrame, known: Iterable[str]) -> Packed:
    """Encode served decisions (``Store.current_decisions()`` columns) and known account ids.

    >>> frame = pd.DataFrame({"account_id": ["a"], "run_id": ["r1"], "score": [0.9],
    ...     "decision": ["block"], "cluster_id": ["c1"], "reasons": [["shares a card"]],
    ...     "scored_at": [pd.Timestamp("2026-01-02T03:04:05Z")]})
    >>> entry = unpack(pack(None, frame, ["a", "b"])).lookup("a")
    >>> entry.decision, entry.score, json.loads(entry.body)["scored_at"]
    ('block', 0.9, '2026-01-02T03:04:05Z')
    """
    columns = ["account_id", "run_id", "score", "decision", "cluster_id", "reasons", "scored_at"]
    frame = decisions[columns].astype(object).where(decisions[columns].notna(), None)
    ids: list[str] = []
    bodies: list[bytes] = []
    offsets = array("q", [0])
    codes = bytearray()
    scores = array("d")
    for account_id, run_id, score, decision, cluster_id, reasons, scored_at in frame.itertuples(
        index=False, name=None
    ):
        result = RiskResult(
            account_id=account_id,
            known=True,  # a scored account is known by definition
            score=score,
            decision=decision,
            cluster_id=cluster_id,
            reasons=list(reasons or ()),
            run_id=run_id,
            scored_at=scored_at.to_pydatetime() if scored_at is not None else None,
        )
        body = result.model_dump_json().encode()
        ids.append(account_id)
        bodies.append(body)
        offsets.append(offsets[-1] + len(body))
        codes.append(_CODES[result.decision])
        scores.append(result.score)
    scored = set(ids)
    counts = dict.fromkeys(DECISIONS, 0)
    counts.update(Counter(DECISIONS[code] for code in codes))
    return Packed(
        run_id=str(run["run_id"]) if run else None,
        published_at=run["published_at"] if run else None,  # type: ignore[arg-type]
        id_chunks=_chunks(ids),
        bodies=b"".join(bodies),
        offsets=offsets,
        codes=bytes(codes),
        scores=scores,
        unscored_chunks=_chunks([a for a in known if a not in scored]),
        counts=counts,
    )


def read_packed(store: Store) -> Packed:
    """Read the served run, its decisions and the known accounts, and pack them.

    The run is read first: should a newer run be published meanwhile, the decisions read are
    at least as new as the run id recorded, and the next poll loads it again.
    """
    run = store.latest_published_run()
    return pack(run, store.current_decisions(), store.known_accounts().tolist())


def read_known(store: Store) -> list[bytes]:
    """Every account id of the store, as :data:`CHUNK`-sized JSON arrays."""
    return _chunks(store.known_accounts().tolist())


def in_store_at(url: str, read: Callable[[Store], T]) -> T:
    """``read(store)`` on a store opened at ``url`` for the call (in a worker process)."""
    store = open_store(url)
    try:
        return read(store)
    finally:
        store.dispose()


def _no_pause() -> None:
    return None


def unpack(packed: Packed, pause: Callable[[], None] = _no_pause) -> Snapshot:
    """Build the snapshot, calling ``pause`` between chunks (``time.sleep(0)`` yields the GIL)."""
    index: dict[str, int] = {}
    for chunk in packed.id_chunks:
        ids = json.loads(chunk)
        index.update(zip(ids, range(len(index), len(index) + len(ids)), strict=True))
        pause()
    return Snapshot(
        run_id=packed.run_id,
        published_at=packed.published_at,
        loaded_at=dt.datetime.now(dt.UTC),
        index=index,
        bodies=packed.bodies,
        offsets=packed.offsets,
        codes=packed.codes,
        scores=packed.scores,
        unscored_known=unscored_set(packed.unscored_chunks, index, pause),
        counts=packed.counts,
    )


def unscored_set(
    chunks: list[bytes], index: Mapping[str, int], pause: Callable[[], None] = _no_pause
) -> set[str]:
    """The ids of ``chunks`` that ``index`` does not score, built chunk by chunk."""
    unscored: set[str] = set()
    for chunk in chunks:
        unscored.update(a for a in json.loads(chunk) if a not in index)
        pause()
    return unscored


def build_snapshot(store: Store) -> Snapshot:
    """Read and build a snapshot in this process (an in-memory store, tests)."""
    return unpack(read_packed(store))
