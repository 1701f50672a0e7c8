"""The bipartite account <-> entity graph, held as an incidence list.

Entities are the things accounts can share: payment fingerprints, sign-up IPs and their
prefixes, request IPs and their network prefixes (/24 IPv4, /48 IPv6), device fingerprints
(TLS fingerprint + user agent, and the TLS fingerprint alone: a rare client stack survives
user-agent rotation) and prompt templates. Each incidence row carries a *volume*: the share of
the account's requests that used the entity (1.0 for sign-up attributes).

>>> inc = combine([account_entities("payment", np.array([0, 0, -1]), np.array(["fp1"]))], 3)
>>> inc.n_entities, inc.account.tolist(), inc.label(0)
(1, [0, 1], 'payment fp1')
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy import sparse

from sentra_graph.features.behaviour import pair_counts

__all__ = [
    "ENTITY_TYPES",
    "EntityPart",
    "Incidence",
    "account_entities",
    "combine",
    "ip_prefix",
    "request_entities",
]

ENTITY_TYPES = (
    "payment",
    "signup_ip",
    "signup_prefix",
    "ip",
    "prefix",
    "device",
    "tls",
    "template",
)
"""Entity kinds, in the order of :attr:`Incidence.entity_type` codes."""


@dataclass(frozen=True)
class EntityPart:
    """Incidence rows of one entity type (entity codes local to the part)."""

    kind: str
    account: np.ndarray
    entity: np.ndarray
    volume: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class Incidence:
    """Account-entity incidence: one row per (account, entity) pair with its volume.

    account, entity, volume: per row; entity_type (index into :data:`ENTITY_TYPES`) and
    entity_key (the raw value) per entity; n_accounts: number of account nodes.
    """

    account: np.ndarray
    entity: np.ndarray
    volume: np.ndarray
    entity_type: np.ndarray
    entity_key: np.ndarray
    n_accounts: int

    @property
    def n_entities(self) -> int:
        return len(self.entity_type)

    def matrix(self, values: np.ndarray | None = None) -> sparse.csr_matrix:
        """Accounts x entities sparse matrix of ``values`` (default: the volumes)."""
        data = self.volume if values is None else values
        return sparse.csr_matrix(
            (data, (self.account, self.entity)), shape=(self.n_accounts, self.n_entities)
        )

    def degree(self) -> np.ndarray:
        """Number of accounts behind each entity."""
        return np.bincount(self.entity, minlength=self.n_entities)

    def type_code(self, kind: str) -> int:
        return ENTITY_TYPES.index(kind)

    def label(self, entity: int) -> str:
        """Human-readable name of an entity, e.g. ``ip 10.0.0.1``."""
        return f"{ENTITY_TYPES[self.entity_type[entity]]} {self.entity_key[entity]}"

    def without(self, rows: np.ndarray) -> Incidence:
        """The same graph with the incidence rows where ``rows`` is true removed."""
        keep = ~rows
        return Incidence(
            self.account[keep],
            self.entity[keep],
            self.volume[keep],
            self.entity_type,
            self.entity_key,
            self.n_accounts,
        )


def request_entities(
    kind: str,
    acc: np.ndarray,
    codes: np.ndarray,
    labels: np.ndarray,
    n_requests: np.ndarray,
    min_accounts: int = 1,
) -> EntityPart:
    """Incidence of a per-request attribute; volume = share of the account's requests.

    acc: account code per request; codes: entity code per request (-1 missing); labels: the
    value of each code; n_requests: requests per account (the share's denominator);
    min_accounts: entities used by fewer accounts are left out (one account's own prompt
    skeletons link it to nobody and are no group's evidence: leaving them out keeps the graph
    small).

    >>> part = request_entities("template", np.array([0, 0, 1, 1]), np.array([5, 6, 5, -1]),
    ...                         np.arange(7), np.array([2.0, 2.0]), min_accounts=2)
    >>> part.account.tolist(), part.entity.tolist(), part.volume.tolist()
    ([0, 1], [5, 5], [0.5, 0.5])
    """
    pair_acc, pair_ent, counts = pair_counts(acc, codes)
    volume = counts / np.maximum(n_requests[pair_acc], 1.0)
    if min_accounts > 1 and len(pair_ent):
        users = np.bincount(pair_ent)
        keep = users[pair_ent] >= min_accounts
        pair_acc, pair_ent, volume = pair_acc[keep], pair_ent[keep], volume[keep]
    return EntityPart(kind, pair_acc, pair_ent, volume, labels)


def account_entities(kind: str, codes: np.ndarray, labels: np.ndarray) -> EntityPart:
    """Incidence of a per-account attribute (code per account, -1 missing); volume 1."""
    present = np.flatnonzero(codes >= 0)
    return EntityPart(kind, present, codes[present], np.ones(len(present)), labels)


def combine(parts: list[EntityPart], n_accounts: int) -> Incidence:
    """One :class:`Incidence` from parts of any types (entity codes made global).

    Entities nobody uses are dropped.
    """
    accounts, entities, volumes, types, keys = [], [], [], [], []
    offset = 0
    for part in parts:
        used, local = np.unique(part.entity, return_inverse=True)
        accounts.append(part.account.astype(np.int64))
        entities.append(local.astype(np.int64) + offset)
        volumes.append(part.volume.astype(np.float64))
        types.append(np.full(len(used), ENTITY_TYPES.index(part.kind), dtype=np.int8))
        keys.append(np.asarray(part.labels, dtype=object)[used])
        offset += len(used)

    def cat(arrays: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(arrays) if arrays else np.zeros(0, dtype=dtype)

    return Incidence(
        cat(accounts, np.int64),
        cat(entities, np.int64),
        cat(volumes, np.float64),
        cat(types, np.int8),
        cat(keys, object),
        n_accounts,
    )


def ip_prefix(ips: pd.Series) -> pd.Series:
    """Network prefix of each address: /24 for IPv4, /48 for IPv6 (None if unparsable).

    Parsing runs once per distinct address.

    >>> ip_prefix(pd.Series(["10.1.2.3", "2001:db8:1:2::5", None, "x"])).tolist()
    ['10.1.2.0/24', '2001:db8:1::/48', None, None]
    """
    codes, uniques = pd.factorize(ips)
    text = pa.array(np.asarray(uniques, dtype=object).astype(str), type=pa.string())
    v4 = pc.match_substring_regex(text, r"^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$")
    v4 = v4.to_numpy(zero_copy_only=False).astype(bool)
    mapped = np.full(len(text), None, dtype=object)
    replaced = pc.replace_substring_regex(text.filter(pa.array(v4)), r"\.\d{1,3}$", ".0/24")
    mapped[v4] = replaced.to_numpy(zero_copy_only=False)
    mapped[~v4] = [_prefix(ip) for ip in text.filter(pa.array(~v4)).to_pylist()]
    out = np.full(len(ips), None, dtype=object)
    present = codes >= 0
    out[present] = mapped[codes[present]]
    return pd.Series(out, index=ips.index, dtype=object)


def _prefix(ip: str) -> str | None:
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    bits = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{bits}", strict=False))
