"""A small vectorised text grammar: patterns with alternatives and slots, expanded for many rows.

Pattern syntax (double sigils, so that code, JSON and markup in patterns stay literal):

- ``{{a|b|c}}``: alternatives, each itself a pattern. Which one a row gets follows the row's
  *skeleton key* when keys are given (rows with one key share one phrasing), else it is random.
- ``<<name>>``: a slot, filled by expanding symbol ``name`` at random for every row, even under a
  key: slot fillers vary inside one template. ``<<name=tag>>`` binds the filler: every
  ``<<name=tag>>`` of one pattern gets the same value (a variable used twice in a snippet).
- ``[[name]]``: a sub-skeleton: symbol ``name`` expanded under the row's key (fixed for a
  template, random for free text).
- ``##lo-hi##``: a random integer in ``[lo, hi]``.

A symbol is a list of patterns (its forms); a form is chosen like an alternative.

>>> g = Grammar({"greet": ["{{Hello|Hi}} <<who>>!"], "who": ["Ann", "Bob", "Eve"]})
>>> rng = np.random.default_rng(0)
>>> out = g.expand("greet", 4, rng).to_pylist()
>>> all(s.split()[0] in {"Hello", "Hi"} and s.endswith("!") for s in out)
True
>>> keys = np.array([7, 7, 7], dtype=np.uint64)
>>> len({s.split()[0] for s in g.expand("greet", 3, rng, keys).to_pylist()})
1
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["Grammar", "mix_keys"]

_SLOT = re.compile(r"<<([a-z0-9_]+)(?:=([a-z0-9]+))?>>")
_KEYED = re.compile(r"\[\[([a-z0-9_]+)\]\]")
_NUM = re.compile(r"##(\d+)-(\d+)##")

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = 0x9E3779B97F4A7C15


def mix_keys(keys: np.ndarray, salt: int) -> np.ndarray:
    """Splitmix64 of ``keys`` xor ``salt``: independent, deterministic choices per position.

    >>> mix_keys(np.array([1, 1, 2], dtype=np.uint64), 5).tolist()[0] == mix_keys(
    ...     np.array([1], dtype=np.uint64), 5).tolist()[0]
    True
    """
    z = keys.astype(np.uint64) ^ np.uint64((salt * _GOLDEN) % 2**64)
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@dataclass(frozen=True)
class _Lit:
    text: str


@dataclass(frozen=True)
class _Choice:
    forms: tuple[tuple, ...]
    salt: int

    @property
    def leaves(self) -> list[str] | None:
        """The forms' texts when every form is plain text (a word list), else None."""
        if all(len(f) == 0 or (len(f) == 1 and isinstance(f[0], _Lit)) for f in self.forms):
            return [f[0].text if f else "" for f in self.forms]
        return None


@dataclass(frozen=True)
class _Ref:
    name: str
    keyed: bool
    salt: int
    bind: str | None = None


@dataclass(frozen=True)
class _Num:
    lo: int
    hi: int


def _parse(text: str, pos: int, depth: int, salts: Iterator[int]) -> tuple[tuple, int]:
    """Parse a sequence up to the end (depth 0) or up to ``|`` / ``}}`` (inside alternatives).

    ``salts`` numbers the choice points in parse order, so that a grammar's keyed choices
    depend only on its own patterns.
    """
    items: list = []
    buf: list[str] = []

    def flush() -> None:
        if buf:
            items.append(_Lit("".join(buf)))
            buf.clear()

    while pos < len(text):
        if depth and (text[pos] == "|" or text.startswith("}}", pos)):
            break
        if text.startswith("{{", pos):
            flush()
            forms = []
            pos += 2
            while True:
                seq, pos = _parse(text, pos, depth + 1, salts)
                forms.append(seq)
                if pos >= len(text):
                    raise ValueError(f"unclosed '{{{{' in pattern {text!r}")
                if text[pos] == "|":
                    pos += 1
                    continue
                pos += 2
                break
            items.append(_Choice(tuple(forms), next(salts)))
            continue
        match = _SLOT.match(text, pos)
        if match:
            flush()
            items.append(_Ref(match.group(1), False, next(salts), match.group(2)))
            pos = match.end()
            continue
        match = _KEYED.match(text, pos)
        if match:
            flush()
            items.append(_Ref(match.group(1), True, next(salts)))
            pos = match.end()
            continue
        match = _NUM.match(text, pos)
        if match:
            flush()
            items.append(_Num(int(match.group(1)), int(match.group(2))))
            pos = match.end()
            continue
        buf.append(text[pos])
        pos += 1
    flush()
    return tuple(items), pos


class Grammar:
    """Symbols (name -> list of pattern strings), parsed once, expanded column-wise with Arrow.

    Args:
        symbols: every symbol a pattern may refer to.
    """

    def __init__(self, symbols: dict[str, list[str]]) -> None:
        self._symbols: dict[str, _Choice] = {}
        salts = count(1)
        for name, patterns in symbols.items():
            if not patterns:
                raise ValueError(f"symbol {name!r} has no patterns")
            forms = tuple(_parse(p, 0, 0, salts)[0] for p in patterns)
            self._symbols[name] = _Choice(forms, next(salts))
        self._leaves: dict[int, pa.Array] = {}
        for choice in self._symbols.values():
            self._check(choice)

    def _check(self, node: object) -> None:
        """Fail on unknown symbols; index the word lists for a fast path."""
        if isinstance(node, _Choice):
            leaves = node.leaves
            if leaves is not None:
                self._leaves[id(node)] = pa.array(leaves, type=pa.string())
            for form in node.forms:
                for item in form:
                    self._check(item)
        elif isinstance(node, _Ref) and node.name not in self._symbols:
            raise ValueError(f"pattern refers to unknown symbol {node.name!r}")

    def __contains__(self, name: str) -> bool:
        return name in self._symbols

    def expand(
        self, name: str, n: int, rng: np.random.Generator, keys: np.ndarray | None = None
    ) -> pa.Array:
        """Expand symbol ``name`` for ``n`` rows; ``keys`` (uint64, one per row) fix skeletons."""
        if name not in self._symbols:
            raise KeyError(f"unknown symbol {name!r}")
        return self._choice(self._symbols[name], n, rng, keys)

    def _choice(
        self, node: _Choice, n: int, rng: np.random.Generator, keys: np.ndarray | None
    ) -> pa.Array:
        m = len(node.forms)
        if m == 1:
            return self._seq(node.forms[0], n, rng, keys)
        if keys is None:
            idx = rng.integers(0, m, n)
        else:
            idx = (mix_keys(keys, node.salt) % np.uint64(m)).astype(np.int64)
        leaves = self._leaves.get(id(node))
        if leaves is not None:
            return leaves.take(pa.array(idx))
        order = np.argsort(idx, kind="stable")
        bounds = np.searchsorted(idx[order], np.arange(m + 1))
        parts = []
        for j in range(m):
            rows = order[bounds[j] : bounds[j + 1]]
            if len(rows):
                sub_keys = None if keys is None else keys[rows]
                parts.append(self._seq(node.forms[j], len(rows), rng, sub_keys))
        inverse = np.empty(n, dtype=np.int64)
        inverse[order] = np.arange(n)
        return pa.concat_arrays(parts).take(pa.array(inverse))

    def _seq(
        self, items: tuple, n: int, rng: np.random.Generator, keys: np.ndarray | None
    ) -> pa.Array:
        columns: list = []
        bound: dict[tuple[str, str], pa.Array] = {}
        for item in items:
            if isinstance(item, _Lit):
                columns.append(pa.scalar(item.text))
            elif isinstance(item, _Num):
                columns.append(pa.array(rng.integers(item.lo, item.hi + 1, n)).cast(pa.string()))
            elif isinstance(item, _Choice):
                columns.append(self._choice(item, n, rng, keys))
            elif item.bind is not None and (item.name, item.bind) in bound:
                columns.append(bound[item.name, item.bind])
            else:
                sub = mix_keys(keys, item.salt) if item.keyed and keys is not None else None
                value = self._choice(self._symbols[item.name], n, rng, sub)
                if item.bind is not None:
                    bound[item.name, item.bind] = value
                columns.append(value)
        if not columns:
            return pa.repeat("", n).cast(pa.string())
        if all(isinstance(c, pa.Scalar) for c in columns):
            return pa.repeat("".join(c.as_py() for c in columns), n).cast(pa.string())
        return pc.binary_join_element_wise(*columns, "")
