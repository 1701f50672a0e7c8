"""Prompt templates: skeleton keys of long prompts, HDBSCAN clusters of the rest, assigned fast.

A *template* is a skeleton many prompts share whatever their slot values ("Solve the following
problem step by step ... {problem}", an IDE plugin's system prompt followed by varying code).
A prompt longer than its skeleton (its first and last words, see
:mod:`sentra_graph.features.skeletons`) gets its skeleton's id: no sample is needed, so the
wrapper of a handful of accounts is as visible as a wrapper of thousands. Shorter prompts are
assigned to clusters :class:`TemplateModel` fits with HDBSCAN on a bounded sample, without
refitting.

Two embedding spaces are kept apart: prompt text (normalised, see
:func:`~sentra_graph.features.embedders.normalize_prompts`, then embedded) and the embeddings a
gateway already computed (``prompt_embedding``), which live in a space of their own. Ids of the
second space are offset by :data:`EMBEDDING_ID_OFFSET` and skeleton ids by
:data:`~sentra_graph.features.skeletons.SKELETON_ID_OFFSET`, so that none collide.

>>> rng = np.random.default_rng(0)
>>> words = [f"w{chr(97 + i)}{chr(97 + j)}" for i in range(26) for j in range(26)]
>>> texts = [f"Solve step by step: {' '.join(rng.choice(words, 8))}" for _ in range(60)]
>>> texts += [f"Translate to French: {' '.join(rng.choice(words, 6))}" for _ in range(60)]
>>> prompts = pd.Series(texts + [None])
>>> model = TemplateModel.fit(prompts, None, TemplateParams(min_cluster_size=10), seed=0)
>>> ids = model.assign(prompts, None)
>>> len(set(ids[:60])), len(set(ids[60:120])), bool(ids[0] != ids[60]), int(ids[-1])
(1, 1, True, -2)
"""

from __future__ import annotations

import dataclasses
import os
import pickle
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields

import hdbscan
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy.spatial import cKDTree
from sklearn.decomposition import PCA
from sklearn.preprocessing import normalize

from sentra_graph.features.embedders import (
    Embedder,
    HashingEmbedder,
    SentenceTransformerEmbedder,
    as_text_array,
    normalize_text,
    parse_embeddings,
)
from sentra_graph.features.markers import COT, RUBRIC, TOOL, prompt_markers
from sentra_graph.features.skeletons import skeleton_ids
from sentra_graph.params import TemplateParams

__all__ = [
    "EMBEDDERS",
    "EMBEDDING_ID_OFFSET",
    "FORMAT_VERSION",
    "NO_PROMPT",
    "NO_TEMPLATE",
    "ApproximatePredictor",
    "TemplateModel",
]

NO_TEMPLATE = -1
"""Noise: the prompt is not close enough to the dense core of any fitted template (HDBSCAN's
noise label, also used for weak memberships below ``TemplateParams.min_strength`` and when too
few prompts were seen to fit anything)."""
NO_PROMPT = -2
"""Nothing to embed: neither a non-blank prompt nor a gateway embedding."""
EMBEDDING_ID_OFFSET = 1_000_000
"""Added to the ids of clusters found among gateway-provided embeddings. Text-space ids stay
below it: a sample of ``sample_size`` prompts holds at most ``sample_size / min_cluster_size``
clusters, and :meth:`TemplateModel.fit` refuses samples that could reach the offset."""
FORMAT_VERSION = 3
"""Version of the :meth:`TemplateModel.to_bytes` layout and of the text featurisation; bumped
when either changes (3: names and identifiers masked, skeleton ids for long prompts)."""

EMBEDDERS = ("hashing", "sentence-transformers")
"""Accepted values of ``TemplateParams.embedder``."""

TEMPLATE_COLUMNS = [
    "template_id",
    "space",
    "size",
    "share",
    "persistence",
    "example",
    "cot_rate",
    "rubric_rate",
    "tool_rate",
]


class ApproximatePredictor:
    """Vectorised equivalent of ``hdbscan.approximate_predict`` for a fitted clusterer.

    ``hdbscan.approximate_predict`` walks the condensed tree in Python, one point at a time.
    This class keeps the same arrays (the fitted points, their core distances, each point's
    parent and lambda in the condensed tree, each cluster's parent, lambda, selected label and
    maximum lambda) and runs the same steps for a whole batch with numpy; nearest neighbours
    come from a ``scipy.spatial.cKDTree`` (multi-threaded queries). Labels equal those of
    ``approximate_predict`` and strengths agree to float rounding.

    :param clusterer: an ``hdbscan.HDBSCAN`` fitted with ``prediction_data=True``.
    """

    def __init__(self, clusterer: hdbscan.HDBSCAN) -> None:
        data = clusterer.prediction_data_
        self.tree = cKDTree(np.asarray(data.raw_data, dtype=np.float64))
        self.core_distances = np.asarray(data.core_distances, dtype=np.float64)
        self.min_samples = int(clusterer.min_samples or clusterer.min_cluster_size)
        raw = clusterer.condensed_tree_._raw_tree
        n_points = len(self.core_distances)
        points = raw[raw["child"] < n_points]
        self.point_parent = np.zeros(n_points, dtype=np.int64)
        self.point_lambda = np.zeros(n_points, dtype=np.float64)
        self.point_parent[points["child"]] = points["parent"]
        self.point_lambda[points["child"]] = points["lambda_val"]
        clusters = data.cluster_tree
        self.has_clusters = bool(len(clusters))
        self.root = int(clusters["parent"].min()) if self.has_clusters else n_points
        top = int(clusters["child"].max()) if self.has_clusters else self.root
        size = top - self.root + 1
        self.cluster_parent = np.full(size, -1, dtype=np.int64)
        self.cluster_lambda = np.full(size, -np.inf, dtype=np.float64)
        self.cluster_parent[clusters["child"] - self.root] = clusters["parent"]
        self.cluster_lambda[clusters["child"] - self.root] = clusters["lambda_val"]
        self.cluster_label = np.full(size, NO_TEMPLATE, dtype=np.int32)
        self.cluster_max_lambda = np.zeros(size, dtype=np.float64)
        for cluster, label in data.cluster_map.items():
            self.cluster_label[int(cluster) - self.root] = label
            self.cluster_max_lambda[int(cluster) - self.root] = data.max_lambdas[cluster]
        self.reach_bound = self._bound()

    def _bound(self) -> float:
        """No point farther than the youngest selected cluster's birth distance from its
        (min_samples + 1)-th neighbour can join a cluster: neighbour searches stop there."""
        births = self.cluster_lambda[self.cluster_label >= 0]
        lowest = float(births.min()) if len(births) else np.inf
        return 1.0 / lowest if lowest > 0 else np.inf

    def keep_labels(self, mapping: np.ndarray) -> None:
        """Renumber the clusters: label ``i`` becomes ``mapping[i]`` (-1 turns it into noise)."""
        known = self.cluster_label >= 0
        self.cluster_label[known] = mapping[self.cluster_label[known]]
        self.has_clusters = bool((self.cluster_label >= 0).any())
        self.reach_bound = self._bound()

    def predict(self, points: np.ndarray, n_jobs: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Cluster labels (int32, -1 for noise) and membership strengths in [0, 1].

        :param points: rows in the space the clusterer was fitted in.
        :param n_jobs: threads for the nearest-neighbour query (-1: all cores).
        """
        n = len(points)
        if not self.has_clusters or n == 0:
            return np.full(n, NO_TEMPLATE, dtype=np.int32), np.zeros(n)
        distances, neighbours = self.tree.query(
            np.asarray(points, dtype=np.float64),
            k=2 * self.min_samples,
            distance_upper_bound=self.reach_bound * (1.0 + 1e-9),
            workers=n_jobs,
        )
        found = neighbours < len(self.core_distances)  # missing neighbours: beyond the bound
        neighbours = np.where(found, neighbours, 0)
        core = np.where(found, self.core_distances[neighbours], np.inf)
        reach = np.maximum(np.maximum(core, distances[:, [self.min_samples]]), distances)
        nearest = reach.argmin(axis=1)
        mr = reach[np.arange(n), nearest]
        with np.errstate(divide="ignore"):
            lam = np.where(mr > 0.0, 1.0 / mr, np.finfo(np.double).max)
        neighbour = neighbours[np.arange(n), nearest]
        cluster = self.point_parent[neighbour].copy()
        # A point joining later than its neighbour's cluster split climbs to the cluster alive
        # at its own lambda (hdbscan's _find_cluster_and_probability).
        active = (self.point_lambda[neighbour] > lam) & (cluster > self.root)
        while active.any():
            rows = np.flatnonzero(active)
            slot = cluster[rows] - self.root
            climb = self.cluster_lambda[slot] >= lam[rows]
            moved = rows[climb]
            cluster[moved] = self.cluster_parent[slot[climb]]
            active[:] = False
            active[moved] = cluster[moved] > self.root
        labels = np.where(mr <= self.reach_bound, self.cluster_label[cluster - self.root], -1)
        max_lambda = self.cluster_max_lambda[cluster - self.root]
        with np.errstate(divide="ignore", invalid="ignore"):
            strength = np.where(max_lambda > 0.0, np.minimum(max_lambda, lam) / max_lambda, 1.0)
        return labels, np.where(labels >= 0, strength, 0.0)


@dataclass
class _Space:
    """One embedding space: its reducer, its fitted clusters and what they look like."""

    name: str
    offset: int
    dim: int | None = None
    pca: PCA | None = None
    predictor: ApproximatePredictor | None = None
    templates: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=TEMPLATE_COLUMNS))

    def reduce(self, vectors: np.ndarray) -> np.ndarray:
        """Project unit vectors to the reduced space and re-normalise them (cosine geometry)."""
        assert self.pca is not None
        return normalize(self.pca.transform(vectors))

    def fit(
        self, vectors: np.ndarray, prompts: pd.Series, params: TemplateParams, seed: int
    ) -> None:
        """Fit the reducer and HDBSCAN on sample vectors (unit rows); describe the clusters.

        Zero vectors (nothing embeddable) are left out; with fewer than
        ``2 * min_cluster_size`` vectors nothing is fitted and every prompt is noise.
        """
        usable = vectors.any(axis=1)
        vectors, prompts = vectors[usable], prompts[usable]
        if len(vectors) < 2 * params.min_cluster_size:
            return
        n_components = min(params.reduced_dims, vectors.shape[1], len(vectors) - 1)
        self.pca = PCA(n_components, svd_solver="full", random_state=seed).fit(vectors)
        clusterer = hdbscan.HDBSCAN(
            min_cluster_size=params.min_cluster_size,
            min_samples=params.min_samples,
            cluster_selection_epsilon=params.cluster_selection_epsilon,
            algorithm="boruvka_kdtree",
            core_dist_n_jobs=1,
            prediction_data=True,
        ).fit(self.reduce(vectors))
        self.predictor = ApproximatePredictor(clusterer)
        mapping = _tight_clusters(clusterer, params.max_core_distance)
        self.predictor.keep_labels(mapping)
        self.templates = _describe(clusterer, mapping, prompts, self.name, self.offset)

    def predict(self, vectors: np.ndarray, params: TemplateParams) -> np.ndarray:
        """Template ids of unit vectors: offset applied; weak members and zero vectors noise."""
        if self.predictor is None or not len(vectors):
            return np.full(len(vectors), NO_TEMPLATE, dtype=np.int32)
        labels, strength = self.predictor.predict(self.reduce(vectors), params.n_jobs)
        keep = (labels >= 0) & (strength >= params.min_strength) & vectors.any(axis=1)
        return np.where(keep, labels + self.offset, NO_TEMPLATE).astype(np.int32)


def _tight_clusters(clusterer: hdbscan.HDBSCAN, max_core_distance: float) -> np.ndarray:
    """New label of each HDBSCAN cluster: the tight ones renumbered in order, the others -1.

    A template's prompts are near-duplicates, so the median core distance of its members is
    small; a broad topic (free text that happens to be denser than its surroundings) has a
    large one.
    """
    labels = clusterer.labels_
    n_clusters = int(labels.max()) + 1
    members = labels >= 0
    core = pd.Series(clusterer.prediction_data_.core_distances[members])
    spread = core.groupby(labels[members]).median().reindex(range(n_clusters)).to_numpy()
    tight = spread <= max_core_distance
    mapping = np.full(n_clusters, NO_TEMPLATE, dtype=np.int32)
    mapping[tight] = np.arange(int(tight.sum()), dtype=np.int32)
    return mapping


def _describe(
    clusterer: hdbscan.HDBSCAN, mapping: np.ndarray, prompts: pd.Series, space: str, offset: int
) -> pd.DataFrame:
    """One row per kept cluster: sample size and share, persistence, an example prompt and
    marker rates."""
    labels = np.where(clusterer.labels_ >= 0, mapping[np.maximum(clusterer.labels_, 0)], -1)
    members = np.flatnonzero(labels >= 0)
    if not len(members):
        return pd.DataFrame(columns=TEMPLATE_COLUMNS)
    text = prompts.reset_index(drop=True).iloc[members].reset_index(drop=True)
    markers = prompt_markers(text)
    frame = pd.DataFrame(
        {
            "label": labels[members],
            "prompt": text,
            "rank": np.where(text.notna(), 0, 1),  # examples: a member with a prompt, strongest
            "strength": clusterer.probabilities_[members],
            "cot_rate": (markers & COT) > 0,
            "rubric_rate": (markers & RUBRIC) > 0,
            "tool_rate": (markers & TOOL) > 0,
        }
    )
    ordered = frame.sort_values(["label", "rank", "strength"], ascending=[True, True, False])
    groups = ordered.groupby("label", sort=True)
    described = groups[["cot_rate", "rubric_rate", "tool_rate"]].mean()
    described["example"] = groups["prompt"].first()
    described["size"] = groups.size()
    described["share"] = described["size"] / len(labels)
    persistence = np.asarray(clusterer.cluster_persistence_)[mapping >= 0]
    described["persistence"] = persistence[described.index]
    described["template_id"] = (described.index + offset).astype(np.int32)
    described["space"] = space
    return described[TEMPLATE_COLUMNS].reset_index(drop=True)


def _make_embedder(params: TemplateParams) -> Embedder:
    if params.embedder == "hashing":
        return HashingEmbedder(params.n_features, params.svd_components, params.min_cluster_size)
    if params.embedder == "sentence-transformers":
        return SentenceTransformerEmbedder(params.text_model)
    raise ValueError(f"TemplateParams.embedder must be one of {EMBEDDERS}, got {params.embedder!r}")


class TemplateModel:
    """Prompt-template clusters fitted on a sample; assigns template ids without refitting.

    Build it with :meth:`fit` (or :meth:`from_bytes`), then call :meth:`assign` on any number of
    prompts. Ids: ``>= 0`` a text-space template, ``>= EMBEDDING_ID_OFFSET`` a template among
    gateway embeddings, ``>= SKELETON_ID_OFFSET`` the skeleton of a prompt longer than it (see
    ``TemplateParams.skeleton_head``), :data:`NO_TEMPLATE` noise, :data:`NO_PROMPT` nothing to
    embed. The same model always gives the same id to the same prompt.
    """

    def __init__(
        self, params: TemplateParams, seed: int, embedder: Embedder, text: _Space, embedding: _Space
    ) -> None:
        self.params = params
        self.seed = seed
        self.embedder = embedder
        self.text = text
        self.embedding = embedding

    @classmethod
    def fit(
        cls,
        prompts: pd.Series,
        embeddings: pd.Series | None,
        params: TemplateParams,
        seed: int,
    ) -> TemplateModel:
        """Fit the embedder, the reducers and HDBSCAN on a bounded sample of the prompts.

        Rows with a gateway embedding (of the most common length) form one space, rows with
        only a prompt the other; each space is sampled down to ``params.sample_size`` rows.
        Text templates are fitted on the sampled prompts too short for a skeleton (the only
        ones assigned to them).

        :param prompts: prompt texts (None for none).
        :param embeddings: gateway embeddings aligned with ``prompts`` (JSON array text, lists or
            None), or None when there are none.
        :param params: template knobs.
        :param seed: seeds the sample and the randomised decompositions.
        :return: the fitted model. A space with fewer than ``2 * min_cluster_size`` usable rows
            assigns :data:`NO_TEMPLATE` to everything.
        """
        if params.embedder not in EMBEDDERS:
            raise ValueError(
                f"TemplateParams.embedder must be one of {EMBEDDERS}, got {params.embedder!r}"
            )
        if params.sample_size // params.min_cluster_size >= EMBEDDING_ID_OFFSET:
            raise ValueError(
                f"sample_size / min_cluster_size must stay below {EMBEDDING_ID_OFFSET} so text "
                f"and embedding template ids cannot collide, got {params.sample_size} / "
                f"{params.min_cluster_size}: lower sample_size or raise min_cluster_size"
            )
        rng = np.random.default_rng(seed)
        routes = _Routes.of(prompts, embeddings, dim=None, discover=True)
        text = _Space("text", offset=0)
        embedding = _Space("embedding", offset=EMBEDDING_ID_OFFSET, dim=routes.dim)
        model = cls(params, seed, _make_embedder(params), text, embedding)

        rows = routes.text_rows[_sample(rng, len(routes.text_rows), params.sample_size)]
        raw = routes.text.take(pa.array(rows, type=pa.int64()))
        normalised = normalize_text(raw, params.max_chars)
        short = skeleton_ids(normalised, params.skeleton_head, params.skeleton_tail) < 0
        if short.sum() >= 2 * params.min_cluster_size:  # the prompts fitted templates serve
            raw, normalised = raw.filter(pa.array(short)), normalised.filter(pa.array(short))
            model.embedder.fit(normalised, seed)
            vectors = _embed_unique(model.embedder, normalised, params.batch_size)
            text.fit(vectors, _objects(raw), params, seed)

        picked = _sample(rng, len(routes.embedding_rows), params.sample_size)
        if len(picked) >= 2 * params.min_cluster_size:
            raw = routes.text.take(pa.array(routes.embedding_rows[picked], type=pa.int64()))
            vectors = normalize(routes.embedding_matrix[picked])
            embedding.fit(vectors, _objects(raw), params, seed)
        return model

    def assign(self, prompts: pd.Series, embeddings: pd.Series | None) -> np.ndarray:
        """Template id of each prompt (int32, same order), without refitting anything.

        Rows with a gateway embedding of the fitted length are assigned among the embedding
        templates, the others by their prompt text; identical normalised prompts are embedded
        and looked up once. The work is done in batches of ``params.batch_size`` distinct texts.

        :param prompts: prompt texts (None for none).
        :param embeddings: gateway embeddings aligned with ``prompts``, or None.
        """
        routes = _Routes.of(prompts, embeddings, self.embedding.dim, discover=False)
        ids = np.full(routes.n, NO_PROMPT, dtype=np.int32)
        ids[routes.unusable_rows] = NO_TEMPLATE
        if len(routes.embedding_rows):
            vectors = normalize(routes.embedding_matrix)
            ids[routes.embedding_rows] = self.embedding.predict(vectors, self.params)
        if len(routes.text_rows):
            text = routes.text.take(pa.array(routes.text_rows, type=pa.int64()))
            ids[routes.text_rows] = self._assign_text(text)
        return ids

    def _assign_text(self, text: pa.Array) -> np.ndarray:
        """Ids of non-blank prompts: distinct raw texts normalised once, distinct normalised
        texts embedded and looked up once, slices of them on ``n_jobs`` threads."""
        raw = text.dictionary_encode()
        threads = _threads(self.params.n_jobs)
        one_thread = dataclasses.replace(self.params, n_jobs=1)

        def normalise(part: pa.Array) -> pa.Array:
            return normalize_text(part, self.params.max_chars)

        def lookup(part: pa.Array) -> np.ndarray:
            return self._template_ids(part, one_thread)

        with ThreadPoolExecutor(threads) as pool:
            parts = _slices(raw.dictionary, self.params.batch_size, threads)
            normalised = pa.concat_arrays(list(pool.map(normalise, parts))).dictionary_encode()
            parts = _slices(normalised.dictionary, self.params.batch_size, threads)
            ids = np.concatenate([np.empty(0, dtype=np.int32), *pool.map(lookup, parts)])
        by_distinct = ids[normalised.indices.to_numpy(zero_copy_only=False)]
        return by_distinct[raw.indices.to_numpy(zero_copy_only=False)]

    def _template_ids(self, normalised: pa.Array, params: TemplateParams) -> np.ndarray:
        """Ids of normalised prompts: their skeleton's where they are longer than it, a fitted
        text template's (or :data:`NO_TEMPLATE`) for the others, which alone are embedded."""
        ids = skeleton_ids(normalised, self.params.skeleton_head, self.params.skeleton_tail)
        short = ids == NO_TEMPLATE
        if short.any() and self.text.predictor is not None:
            rest = normalised.filter(pa.array(short))
            ids[short] = self.text.predict(self.embedder.transform(rest), params)
        return ids

    def templates(self) -> pd.DataFrame:
        """The fitted templates, one row each.

        Columns: template_id, space ("text" or "embedding"), size and share of the fitting
        sample, HDBSCAN persistence (cluster stability), an example prompt (None when an
        embedding came without one) and cot_rate, rubric_rate, tool_rate: the share of its
        sample prompts carrying each marker of :mod:`sentra_graph.features.markers`.
        """
        frames = [s.templates for s in (self.text, self.embedding) if len(s.templates)]
        if not frames:
            return pd.DataFrame(columns=TEMPLATE_COLUMNS)
        return pd.concat(frames, ignore_index=True)

    def to_bytes(self) -> bytes:
        """Serialise the model: a versioned pickle (read it back with :meth:`from_bytes`)."""
        state = {
            "format": _FORMAT_NAME,
            "version": FORMAT_VERSION,
            "params": asdict(self.params),
            "seed": self.seed,
            "embedder": self.embedder,
            "text": self.text,
            "embedding": self.embedding,
        }
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def from_bytes(cls, blob: bytes) -> TemplateModel:
        """Load a model written by :meth:`to_bytes`. Unpickles: only for bytes this code wrote.

        :raises ValueError: the bytes are not a template model of the current format version
            (delete the saved model so that the next run refits it).
        """
        try:
            state = pickle.loads(blob)  # noqa: S301 - written by to_bytes into our own store
        except Exception as error:
            raise ValueError(f"not a serialised TemplateModel: {error}") from error
        if not isinstance(state, dict) or state.get("format") != _FORMAT_NAME:
            raise ValueError("not a serialised TemplateModel (expected TemplateModel.to_bytes())")
        if state.get("version") != FORMAT_VERSION:
            raise ValueError(
                f"template model format version {state.get('version')} cannot be read (this "
                f"code reads version {FORMAT_VERSION}): delete the saved model to refit it"
            )
        known = {f.name for f in fields(TemplateParams)}
        params = TemplateParams(**{k: v for k, v in state["params"].items() if k in known})
        return cls(params, state["seed"], state["embedder"], state["text"], state["embedding"])


_FORMAT_NAME = "sentra-graph/template-model"


@dataclass
class _Routes:
    """Where each row goes: text rows, embedding rows, unusable rows; the rest has nothing."""

    n: int
    text: pa.Array
    text_rows: np.ndarray
    embedding_rows: np.ndarray
    embedding_matrix: np.ndarray
    unusable_rows: np.ndarray
    dim: int | None

    @classmethod
    def of(
        cls, prompts: pd.Series, embeddings: pd.Series | None, dim: int | None, discover: bool
    ) -> _Routes:
        """Route rows: embeddings of length ``dim`` (``discover``: the most common length) go
        to the embedding space, other rows with a non-blank prompt to the text space, rows
        with only an unusable embedding are unusable."""
        text = as_text_array(prompts)
        n = len(text)
        given = np.zeros(n, dtype=bool)
        rows, matrix = np.empty(0, dtype=np.int64), np.empty((0, dim or 0), dtype=np.float32)
        if embeddings is not None:
            if len(embeddings) != n:
                raise ValueError(
                    f"prompts and embeddings differ in length: {n} != {len(embeddings)}"
                )
            given = pd.Series(embeddings, dtype=object).notna().to_numpy()
            if given.any() and (discover or dim is not None):
                rows, matrix = parse_embeddings(embeddings, dim)
                dim = matrix.shape[1] if len(rows) else dim
        blank = pc.utf8_length(pc.utf8_trim_whitespace(text))
        has_prompt = pc.fill_null(pc.greater(blank, 0), False).to_numpy(zero_copy_only=False)
        embedded = np.zeros(n, dtype=bool)
        embedded[rows] = True
        text_rows = np.flatnonzero(has_prompt & ~embedded)
        unusable = np.flatnonzero(given & ~embedded & ~has_prompt)
        return cls(n, text, text_rows, rows, matrix, unusable, dim)


def _objects(text: pa.Array) -> pd.Series:
    return pd.Series(text.to_numpy(zero_copy_only=False), dtype=object)


def _threads(n_jobs: int) -> int:
    """Threads for ``n_jobs`` (-1: one per core)."""
    return max(1, os.cpu_count() or 1) if n_jobs < 0 else max(1, n_jobs)


def _slices(values: pa.Array, batch_size: int, threads: int) -> list[pa.Array]:
    """Slices of at most ``batch_size`` values, at least one per thread (when there is work)."""
    size = max(1, min(batch_size, -(-len(values) // threads)))
    return [values.slice(start, size) for start in range(0, len(values), size)]


def _sample(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Sorted positions of a uniform sample of at most ``size`` of ``n`` rows."""
    if n <= size:
        return np.arange(n)
    return np.sort(rng.choice(n, size=size, replace=False))


def _embed_unique(embedder: Embedder, texts: pa.Array, batch_size: int) -> np.ndarray:
    """Embed texts, each distinct text once."""
    encoded = texts.dictionary_encode()
    distinct = encoded.dictionary
    parts = [
        embedder.transform(distinct.slice(start, batch_size))
        for start in range(0, len(distinct), batch_size)
    ]
    return np.concatenate(parts)[encoded.indices.to_numpy(zero_copy_only=False)]
