"""API keys: parsing ``SENTRA_API_KEYS``, constant-time checks and scopes.

Keys are held only as hex SHA-256 digests. A presented key is hashed, looked up, and the digest
is confirmed with :func:`hmac.compare_digest`; no key is ever logged or echoed in an error.

>>> ring = KeyRing(parse_api_keys("gw-secret:gateway,sha256:" + hash_key("boss") + ":admin"))
>>> ring.authenticate("gw-secret").scopes
frozenset({'gateway'})
>>> ring.authenticate("boss").allows("analyst")
True
>>> ring.authenticate("nope") is None
True
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

GATEWAY = "gateway"
ANALYST = "analyst"
ADMIN = "admin"
SCOPES = (GATEWAY, ANALYST, ADMIN)
"""Scope names; ``admin`` implies every other scope."""

HASH_PREFIX = "sha256:"
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
KEY_ID_LENGTH = 12
"""Hex digits of a key's digest that name it in feedback and logs (the digest is not secret)."""


class KeyConfigError(ValueError):
    """``SENTRA_API_KEYS`` (or a scope list) is malformed; the message never contains a key."""


def hash_key(key: str) -> str:
    """The hex SHA-256 digest under which a key is held.

    >>> hash_key("test")[:16]
    '9f86d081884c7d65'
    """
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_scopes(text: str | Iterable[str], where: str = "scopes") -> frozenset[str]:
    """Validate ``+``-joined scope names (or an iterable of them).

    >>> sorted(parse_scopes("analyst+gateway"))
    ['analyst', 'gateway']
    """
    names = text.split("+") if isinstance(text, str) else list(text)
    scopes = frozenset(name.strip() for name in names if name.strip())
    unknown = sorted(scopes - set(SCOPES))
    if not scopes or unknown:
        raise KeyConfigError(
            f"{where}: expected scopes from {'+'.join(SCOPES)}, found "
            f"{'+'.join(unknown) if unknown else 'none'}"
        )
    return scopes


def parse_api_keys(text: str) -> dict[str, frozenset[str]]:
    """Parse ``KEY:SCOPES,...`` into ``{sha256 hex digest: scopes}``.

    A KEY written ``sha256:<hex>`` is already the digest of the real key.

    >>> keys = parse_api_keys("a:gateway, sha256:" + "0" * 64 + ":analyst+admin")
    >>> sorted(keys[hash_key("a")]), sorted(keys["0" * 64])
    (['gateway'], ['admin', 'analyst'])
    """
    keys: dict[str, frozenset[str]] = {}
    for position, entry in enumerate(text.split(","), start=1):
        entry = entry.strip()
        if not entry:
            continue
        where = f"SENTRA_API_KEYS entry {position}"
        key, sep, scopes = entry.rpartition(":")
        if not sep or not key:
            raise KeyConfigError(f"{where}: expected KEY:SCOPES, e.g. gw-secret:gateway")
        if key.startswith(HASH_PREFIX):
            digest = key[len(HASH_PREFIX) :].lower()
            if not _HEX_DIGEST.fullmatch(digest):
                raise KeyConfigError(f"{where}: sha256: must be followed by 64 hex digits")
        else:
            digest = hash_key(key)
        keys[digest] = keys.get(digest, frozenset()) | parse_scopes(scopes, where)
    return keys


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: the key's id (digest prefix) and its scopes."""

    key_id: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return ADMIN in self.scopes or scope in self.scopes


INSECURE_PRINCIPAL = Principal(key_id="insecure-dev", scopes=frozenset(SCOPES))
"""Who every caller is when the server runs with ``--insecure-dev`` and no keys."""


class KeyRing:
    """An immutable set of key digests with their scopes; replaced whole, never mutated."""

    __slots__ = ("_entries",)

    def __init__(self, *digest_maps: Mapping[str, frozenset[str]]) -> None:
        merged: dict[str, frozenset[str]] = {}
        for digests in digest_maps:
            for digest, scopes in digests.items():
                merged[digest] = merged.get(digest, frozenset()) | scopes
        self._entries = {
            digest: (digest, Principal(digest[:KEY_ID_LENGTH], scopes))
            for digest, scopes in merged.items()
        }

    def __len__(self) -> int:
        return len(self._entries)

    def authenticate(self, presented: str) -> Principal | None:
        """The principal of a presented key, or None.

        The dict finds the candidate by the presented key's digest; the stored digest is then
        confirmed with :func:`hmac.compare_digest`, so no comparison leaks key material.
        """
        digest = hash_key(presented)
        entry = self._entries.get(digest)
        if entry is None:
            return None
        stored, principal = entry
        return principal if hmac.compare_digest(stored, digest) else None
