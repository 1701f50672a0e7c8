"""Prompt skeletons: the fixed words a scripted prompt wraps around its payload.

A script that harvests a model sends one wrapper around ever-changing content: an instruction
or role up front, a chain-of-thought request or an output format at the end ("What is wrong
with this code? <code> Before you answer, list what you know ... Answer in <language>."). After
normalisation (slot values masked, see :func:`~sentra_graph.features.embedders.normalize_text`)
the first and last words of its prompts are the same, prompt after prompt, while the middle
varies. The *skeleton key* of a normalised prompt hashes its first ``head`` and last ``tail``
words; prompts with no more than ``head + tail`` words have no payload between them and get no
key (:data:`NO_SKELETON`).

Unlike fitted template clusters, keys need no sample: a wrapper used by a handful of accounts is
found as surely as one used by thousands. The hashing is column-wise (pyarrow and numpy, no
Python loop per prompt) and stable across processes.

>>> texts = ["solve this: a b c d e f g. think step by step, then answer.",
...          "solve this: h i j k l. think step by step, then answer.",
...          "solve this: a b c d e f g. answer only.", "too short to have a payload"]
>>> keys = skeleton_keys(texts, head=2, tail=5)
>>> bool(keys[0] == keys[1]), bool(keys[0] != keys[2]), int(keys[3])
(True, True, 0)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from sentra_graph.features.behaviour import NO_TEMPLATE
from sentra_graph.features.embedders import TextColumn, as_text_array

__all__ = [
    "NO_SKELETON",
    "SKELETON_ID_OFFSET",
    "SKELETON_ID_SPACE",
    "skeleton_ids",
    "skeleton_keys",
]

NO_SKELETON = 0
"""Key of a text too short to hold a payload between its head and its tail (keys of real
skeletons are never 0)."""
SKELETON_ID_OFFSET = 2**30
"""Template ids of skeletons start here, far above fitted template ids (text and gateway
embedding spaces, see :mod:`sentra_graph.features.prompts`)."""
SKELETON_ID_SPACE = 2**30 - 1
"""Skeleton ids are ``SKELETON_ID_OFFSET + key % SKELETON_ID_SPACE``: below 2**31 - 1, so they
fit the store's 32-bit template ids. Two skeletons share an id by chance with probability
about 1e-9 per pair: rare wrappers of unrelated accounts almost never merge."""

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_SALT = np.uint64(0x632BE59BD9B4E019)
_PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^`{|}~"


def skeleton_keys(texts: TextColumn, head: int, tail: int) -> np.ndarray:
    """uint64 key of each text's first ``head`` and last ``tail`` words.

    Words are runs of non-whitespace with surrounding punctuation stripped (``answer.`` and
    ``answer`` are one word); texts with at most ``head + tail`` words, missing texts, and all
    texts when ``head + tail`` is 0, get :data:`NO_SKELETON`.

    :param texts: normalised prompts.
    :param head: words kept from the start.
    :param tail: words kept from the end.

    >>> keys = skeleton_keys(["a b c d", "a, x y d.", "a b", None], head=1, tail=1)
    >>> bool(keys[0] == keys[1]), keys[2:].tolist()
    (True, [0, 0])
    """
    text = pc.fill_null(as_text_array(texts), "")
    n = len(text)
    keys = np.zeros(n, dtype=np.uint64)
    if head + tail <= 0 or n == 0:
        return keys
    tokens = pc.utf8_split_whitespace(text)
    counts = pc.list_value_length(tokens).to_numpy(zero_copy_only=False).astype(np.int64)
    encoded = pc.list_flatten(tokens).dictionary_encode()
    vocab = pc.utf8_trim(encoded.dictionary, characters=_PUNCTUATION)
    vocab_hash = pd.util.hash_array(vocab.to_numpy(zero_copy_only=False).astype(object))
    word = pc.greater(pc.utf8_length(vocab), 0).to_numpy(zero_copy_only=False)
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    row = np.repeat(np.arange(n, dtype=np.int64), counts)
    keep = word[codes]
    row, hashes = row[keep], vocab_hash[codes[keep]]
    length = np.bincount(row, minlength=n)
    start = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(length, out=start[1:])
    framed = np.flatnonzero(length > head + tail)
    if not len(framed):
        return keys
    positions = [start[framed] + j for j in range(head)]
    positions += [start[framed + 1] - tail + j for j in range(tail)]
    key = np.full(len(framed), _SALT, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for at in positions:
            key = key * _GOLDEN ^ (hashes[at] + _SALT)
            key ^= key >> np.uint64(31)
    keys[framed] = np.where(key == NO_SKELETON, np.uint64(1), key)
    return keys


def skeleton_ids(texts: TextColumn, head: int, tail: int) -> np.ndarray:
    """int32 template id of each text's skeleton, :data:`NO_TEMPLATE` where it has none (see
    :func:`skeleton_keys`).

    >>> ids = skeleton_ids(["one two three four", "hi"], head=1, tail=1)
    >>> bool(ids[0] >= SKELETON_ID_OFFSET), int(ids[1])
    (True, -1)
    """
    keys = skeleton_keys(texts, head, tail)
    ids = SKELETON_ID_OFFSET + (keys % np.uint64(SKELETON_ID_SPACE)).astype(np.int64)
    return np.where(keys == NO_SKELETON, NO_TEMPLATE, ids).astype(np.int32)
