"""Network and client identities: IP addresses, user agents, TLS fingerprints, ids.

Farms and legit users draw addresses from the same spaces (a residential proxy *is* somebody's
home line), so an address range alone never gives a farm away.

>>> rng = np.random.default_rng(0)
>>> ips = residential_ips(3, rng)
>>> [ip.count(".") for ip in ips]
[3, 3, 3]
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sentra_graph.synth.grammar import Grammar

__all__ = [
    "CLIENTS",
    "CLIENT_NAMES",
    "LEGIT_CLIENT_SHARE",
    "block_ips",
    "client_identity",
    "cloud_ips",
    "hex_ids",
    "ipv6_ips",
    "rare_tls",
    "residential_ips",
    "tls_of",
]

# First octets of large residential ISP allocations (illustrative, all public unicast).
_RESIDENTIAL_FIRST = np.array(
    [24, 47, 50, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87,
     88, 89, 90, 91, 92, 93, 94, 95, 98, 99, 108, 109, 151, 173, 174, 176, 177, 178, 179, 181,
     186, 187, 188, 189, 190, 201]
)  # fmt: skip
# First octets of large cloud providers' ranges.
_CLOUD_FIRST = np.array([3, 13, 18, 20, 34, 35, 40, 44, 52, 54, 104, 130, 139, 146, 157, 165])


def _dotted(octets: np.ndarray) -> np.ndarray:
    """Rows of four octets -> dotted-quad strings (object array)."""
    cols = [pa.array(octets[:, i]).cast(pa.string()) for i in range(4)]
    return pc.binary_join_element_wise(*cols, ".").to_numpy(zero_copy_only=False)


def residential_ips(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` residential-looking public IPv4 addresses (collisions are vanishingly rare)."""
    octets = rng.integers(1, 255, size=(n, 4))
    octets[:, 0] = rng.choice(_RESIDENTIAL_FIRST, n)
    return _dotted(octets)


def cloud_ips(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` addresses in cloud providers' ranges (servers, CI runners, PaaS egress)."""
    octets = rng.integers(1, 255, size=(n, 4))
    octets[:, 0] = rng.choice(_CLOUD_FIRST, n)
    return _dotted(octets)


def block_ips(n: int, rng: np.random.Generator, cloud: bool = False) -> np.ndarray:
    """``n`` distinct addresses inside one random /24 (a campus, an office, a carrier NAT)."""
    base = (cloud_ips if cloud else residential_ips)(1, rng)[0].rsplit(".", 1)[0]
    hosts = rng.choice(np.arange(2, 254), size=min(n, 252), replace=False)
    return np.array([f"{base}.{h}" for h in hosts], dtype=object)


def ipv6_ips(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` global-unicast IPv6 addresses (home and mobile lines)."""
    words = rng.integers(0, 0x10000, size=(n, 5))
    prefix = rng.choice([0x2A00, 0x2A01, 0x2A02, 0x2600, 0x2601, 0x2603, 0x2406, 0x2804], n)
    rows = zip(prefix, words, strict=True)
    return np.array(
        [f"{p:x}:{a:x}:{b:x}:{c:x}::{d:x}:{e:x}" for p, (a, b, c, d, e) in rows], object
    )


def hex_ids(prefix: str, n: int, rng: np.random.Generator, width: int = 12) -> np.ndarray:
    """``n`` distinct ids ``prefix`` + ``width`` hex digits.

    >>> ids = hex_ids("acct_", 5, np.random.default_rng(1)); len(set(ids)), ids[0][:5]
    (5, 'acct_')
    """
    alphabet = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    ids = alphabet[rng.integers(0, 16, (n, width))].view(f"S{width}").ravel()
    while len(np.unique(ids)) < n:
        _, first = np.unique(ids, return_index=True)
        again = np.setdiff1d(np.arange(n), first)
        ids[again] = alphabet[rng.integers(0, 16, (len(again), width))].view(f"S{width}").ravel()
    return np.char.add(prefix, ids.astype(str)).astype(object)


def _tls(name: str) -> str:
    """A stable JA4-style fingerprint for a client stack."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    ciphers, extensions = int(digest[:2], 16) % 12 + 10, int(digest[2:4], 16) % 10 + 8
    return f"t13d{ciphers:02d}{extensions:02d}h2_{digest[4:16]}_{digest[16:28]}"


CLIENTS: dict[str, tuple[list[str], str, float]] = {
    # name: (user-agent patterns, TLS stack, share among legit API traffic)
    "openai-python": (["OpenAI/Python 1.##30-82##.##0-9##"], "python-openssl3", 0.30),
    "python-httpx": (["python-httpx/0.2##5-8##.##0-2##"], "python-openssl3", 0.10),
    "python-requests": (["python-requests/2.3##1-2##.##0-5##"], "python-openssl3", 0.08),
    "aiohttp": (["Python/3.1##0-3## aiohttp/3.##8-11##.##0-9##"], "python-openssl3-old", 0.04),
    "langchain": (["langchain-openai/0.##1-3##.##0-30## OpenAI/Python 1.##30-82##.0"],
                  "python-openssl3", 0.04),
    "openai-node": (["OpenAI/JS 4.##40-99##.##0-5##"], "node", 0.14),
    "node-fetch": (["node-fetch/1.0 (+https://github.com/bitinn/node-fetch)", "undici",
                    "axios/1.##5-7##.##0-9##"], "node", 0.07),
    "curl": (["curl/8.##0-11##.##0-1##", "curl/7.##68-88##.0"], "curl-openssl", 0.05),
    "go": (["Go-http-client/2.0", "Go-http-client/1.1", "openai-go/0.1.0-alpha.##30-60##"],
           "go", 0.04),
    "java": (["okhttp/4.##9-12##.0", "Java-http-client/1##7-9##.0.##1-9##"], "java", 0.03),
    "rust": (["reqwest/0.1##1-2##.##0-9##", "async-openai/0.##20-28##.0"], "rustls", 0.02),
    "browser": (
        [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/1##20-31##.0.0.0 Safari/537.36",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
            "Gecko) Version/17.##0-6## Safari/605.1.15",
            "Mozilla/5.0 (X11; Linux x86_64; rv:1##20-33##.0) Gecko/20100101 Firefox/1##20-33##.0",
        ],
        "browser",
        0.05,
    ),
    "ios": (["MyAIApp/##1-9##.##0-20## CFNetwork/14##00-98## Darwin/2##2-4##.##0-6##.0"],
            "ios", 0.02),
    "android": (["okhttp/4.##9-12##.0 (Android 1##2-5##)", "Dalvik/2.1.0 (Linux; U; Android "
                 "1##2-5##; Pixel ##5-9##)"], "android", 0.02),
}  # fmt: skip
"""Client libraries; every client of one stack shares one TLS fingerprint."""

_UA = Grammar({name: patterns for name, (patterns, _, _) in CLIENTS.items()})
_TLS = {name: _tls(stack) for name, (_, stack, _) in CLIENTS.items()}
CLIENT_NAMES = list(CLIENTS)
LEGIT_CLIENT_SHARE = np.array([share for _, _, share in CLIENTS.values()])
LEGIT_CLIENT_SHARE = LEGIT_CLIENT_SHARE / LEGIT_CLIENT_SHARE.sum()


def tls_of(client: str) -> str:
    """The TLS fingerprint of a client library (shared by all its users)."""
    return _TLS[client]


def rare_tls(rng: np.random.Generator) -> str:
    """A fingerprint no legit client library produces (a customised or uncommon stack)."""
    return _tls(f"custom-{rng.integers(0, 2**62)}")


def client_identity(clients: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A user agent (with a version drawn per row) and the TLS fingerprint for each client name.

    >>> ua, tls = client_identity(np.array(["curl", "curl"]), np.random.default_rng(0))
    >>> ua[0].startswith("curl/"), tls[0] == tls[1]
    (True, True)
    """
    clients = np.asarray(clients, dtype=object)
    ua = np.empty(len(clients), dtype=object)
    for name in np.unique(clients):
        rows = np.flatnonzero(clients == name)
        ua[rows] = _UA.expand(name, len(rows), rng).to_numpy(zero_copy_only=False)
    tls = np.array([_TLS[c] for c in clients], dtype=object)
    return ua, tls
