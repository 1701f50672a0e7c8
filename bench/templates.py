"""Prompt templates: fit time, assignment throughput and recovery of planted templates.

Prompts come from the synthetic generator's grammar: a share of them follow planted templates
(one skeleton key each, slots still vary), the rest is free text (a fresh key per prompt). The
model is fitted on a sample and then assigns a larger, unseen set. Wall and CPU seconds are both
printed: on a shared machine the CPU figure is the steadier one (assignment runs on all cores).

    python bench/templates.py                        # fit on 20,000, assign 200,000
    python bench/templates.py --assign 1000000 --templates 60
    python bench/templates.py --scenario 20000       # also: a generated scenario's traffic
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from sentra_graph.features.prompts import NO_TEMPLATE, TemplateModel
from sentra_graph.params import TemplateParams
from sentra_graph.synth import generate
from sentra_graph.synth.prompts import KIND, KINDS, LEGIT_KIND_WEIGHTS, render


def corpus(
    n: int, n_templates: int, templated_share: float, seed: int
) -> tuple[pd.Series, np.ndarray]:
    """Prompts and their planted template (-1 for free text)."""
    rng = np.random.default_rng(seed)
    plan = np.random.default_rng(12345)  # the planted templates do not depend on the seed
    template_kinds = plan.choice(
        [KIND[k] for k in ("reasoning", "exam", "eval", "tool", "ide", "product", "coding", "qa")],
        n_templates,
    )
    template_keys = plan.integers(1, 2**62, n_templates).astype(np.uint64)
    template_flags = plan.random((n_templates, 3)) < 0.5
    popularity = 1.0 / np.arange(1, n_templates + 1) ** 0.7
    templated = rng.random(n) < templated_share
    planted = np.where(templated, rng.choice(n_templates, n, p=popularity / popularity.sum()), -1)
    free_kinds = rng.choice(len(KINDS), n, p=LEGIT_KIND_WEIGHTS / LEGIT_KIND_WEIGHTS.sum())
    kinds = np.where(templated, template_kinds[np.maximum(planted, 0)], free_kinds)
    keys = np.where(
        templated,
        template_keys[np.maximum(planted, 0)],
        rng.integers(2**62, 2**63, n).astype(np.uint64),
    ).astype(np.uint64)
    free_flags = rng.random((n, 3)) < 0.3
    flags = np.where(templated[:, None], template_flags[np.maximum(planted, 0)], free_flags)
    noise = np.where(templated, rng.random(n) < 0.05, rng.random(n) < 0.3)
    prompts = render(kinds, keys, flags[:, 0], flags[:, 1], flags[:, 2], noise, rng)
    return pd.Series(prompts.to_numpy(zero_copy_only=False), dtype=object), planted


def distinct_variants(prompts: pd.Series, seed: int) -> pd.Series:
    """The prompts with a random letter word appended: every one distinct after normalising."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = ["".join(w) for w in letters[rng.integers(0, 26, (len(prompts), 8))]]
    return prompts.reset_index(drop=True) + " " + pd.Series(words, dtype=object)


def quality(ids: np.ndarray, planted: np.ndarray) -> dict[str, float]:
    """Recovery of planted templates and how free text is treated."""
    frame = pd.DataFrame({"id": ids, "planted": planted})
    templated = frame[frame["planted"] >= 0]
    modal = templated.groupby("planted")["id"].agg(lambda s: s.value_counts().index[0])
    hit = templated["id"].to_numpy() == modal.loc[templated["planted"]].to_numpy()
    found = modal[modal != NO_TEMPLATE]
    free = frame[frame["planted"] < 0]
    templated_ids = set(found)
    return {
        "templates_found": float(len(found)),
        "templates_planted": float(len(modal)),
        "templates_sharing_an_id": float(len(found) - found.nunique()),
        "templated_share_on_modal_id": float(np.mean(hit & (templated["id"] != NO_TEMPLATE))),
        "free_text_noise_share": float(np.mean(free["id"] == NO_TEMPLATE)),
        "free_text_in_a_planted_templates_id": float(np.mean(free["id"].isin(templated_ids))),
    }


def scenario(n_accounts: int, params: TemplateParams, seed: int) -> None:
    """Fit on a sample of a generated scenario's prompts, assign them all, and print how often
    each role's requests fall into a template."""
    t0 = time.perf_counter()
    generated = generate(n_accounts, days=7, seed=seed)
    requests = generated.requests
    print(f"scenario: {len(requests):,} requests generated in {time.perf_counter() - t0:.1f} s")
    sample = requests.sample(min(len(requests), params.sample_size), random_state=seed)
    t0 = time.perf_counter()
    model = TemplateModel.fit(sample["prompt"], sample["prompt_embedding"], params, seed)
    print(f"  fit: {time.perf_counter() - t0:.2f} s, {len(model.templates())} templates")
    t0, c0 = time.perf_counter(), time.process_time()
    ids = model.assign(requests["prompt"], requests["prompt_embedding"])
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(
        f"  assign: {len(requests):,} prompts ({requests['prompt'].nunique():,} distinct) in "
        f"{seconds:.2f} s = {len(requests) / seconds:,.0f} prompts/s ({cpu:.2f} s CPU)"
    )
    role = requests["account_id"].map(generated.truth.set_index("account_id")["role"])
    frame = pd.DataFrame({"role": role, "templated": ids >= 0, "id": ids})
    for name, group in frame.groupby("role"):
        print(
            f"  {name}: {group['templated'].mean():.1%} of requests in a template, "
            f"{group.loc[group['templated'], 'id'].nunique()} templates used"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit", type=int, default=20_000, help="prompts to fit on")
    parser.add_argument("--assign", type=int, default=200_000, help="prompts to assign")
    parser.add_argument("--templates", type=int, default=40, help="planted templates")
    parser.add_argument("--templated-share", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scenario", type=int, default=0, help="accounts of a generated scenario")
    args = parser.parse_args()
    params = TemplateParams(sample_size=args.fit)

    prompts, _ = corpus(args.fit, args.templates, args.templated_share, args.seed)
    t0, c0 = time.perf_counter(), time.process_time()
    model = TemplateModel.fit(prompts, None, params, seed=args.seed)
    fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
    blob = model.to_bytes()
    print(
        f"fit: {len(prompts):,} prompts in {fit_s:.2f} s ({fit_cpu:.2f} s CPU), "
        f"{len(model.templates())} templates, model {len(blob) / 1e6:.1f} MB serialised"
    )

    prompts, planted = corpus(args.assign, args.templates, args.templated_share, args.seed + 1)
    distinct = prompts.nunique()
    t0, c0 = time.perf_counter(), time.process_time()
    ids = model.assign(prompts, None)
    assign_s, assign_cpu = time.perf_counter() - t0, time.process_time() - c0
    print(
        f"assign: {len(prompts):,} prompts ({distinct:,} distinct) in {assign_s:.2f} s = "
        f"{len(prompts) / assign_s:,.0f} prompts/s ({assign_cpu:.2f} s CPU)"
    )
    unique = distinct_variants(prompts.iloc[:100_000], args.seed)
    t0 = time.perf_counter()
    model.assign(unique, None)
    unique_s = time.perf_counter() - t0
    print(f"assign, every prompt distinct: {len(unique) / unique_s:,.0f} prompts/s")
    for name, value in quality(ids, planted).items():
        print(f"  {name}: {value:.3f}")
    if args.scenario:
        scenario(args.scenario, params, args.seed)


if __name__ == "__main__":
    main()
