# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Choosing the block and review thresholds
#
# Every scored account gets a score in [0, 1]; `SENTRA_BLOCK_THRESHOLD` and
# `SENTRA_REVIEW_THRESHOLD` turn scores into decisions. This notebook measures precision and
# recall against ground truth as the thresholds move: the generator's labels on demo data, or
# the analysts' feedback (`farm` / `legit`) on a real store.

# %%
import matplotlib.pyplot as plt
import pandas as pd

from sentra_graph.config import get_settings
from sentra_graph.explore import load_run, notebook_store, threshold_sweep

data = notebook_store(n_accounts=1500, seed=0)
assert data.truth is not None, "no ground truth: add analyst feedback (farm / legit) first"
run = load_run(data.store)
decisions = data.store.run_decisions(run.run_id)[["account_id", "score", "decision", "cluster_id"]]
truth = data.truth
settings = get_settings()
print(f"run {run.run_id}: {len(decisions)} accounts scored, {len(truth)} with ground truth")
truth["role"].value_counts()

# %% [markdown]
# ## Decisions against the truth, at the configured thresholds
# Look-alikes are legitimate groups that resemble farms (an enterprise on one card, a campus
# behind one NAT): they must not be blocked.

# %%
judged = truth.merge(decisions, on="account_id", how="left")
judged["decision"] = judged["decision"].fillna("allow (not scored)")
pd.crosstab(judged["role"], judged["decision"], margins=True)

# %%
if "kind" in judged:
    display(pd.crosstab([judged["role"], judged["kind"]], judged["decision"]))

# %% [markdown]
# ## Precision and recall as the threshold moves
# An account is flagged when its score reaches the threshold; farm accounts are the positives.

# %%
sweep = threshold_sweep(decisions, truth)
fig, ax = plt.subplots(figsize=(9, 4.5))
ax.plot(sweep["threshold"], sweep["precision"], label="precision")
ax.plot(sweep["threshold"], sweep["recall"], label="recall")
ax.plot(sweep["threshold"], sweep["f1"], label="F1", linestyle=":")
for value, name in ((settings.block_threshold, "block"), (settings.review_threshold, "review")):
    ax.axvline(value, color="grey", linestyle="--")
    ax.annotate(f" {name} {value:.2f}", (value, 0.05), color="grey")
ax.set_xlabel("score threshold")
ax.set_ylim(0, 1.02)
ax.legend()
ax.set_title("farm accounts flagged at score >= threshold");

# %%
columns = [c for c in sweep if c.startswith("flagged_")]
ax = sweep.plot(x="threshold", y=columns, logy=True, figsize=(9, 4))
ax.set_ylabel("accounts flagged (log)")
ax.set_title("who gets flagged, by true role");

# %% [markdown]
# ## Suggested thresholds
# Blocking must be almost never wrong; review can afford more false alarms since an analyst
# looks. The lowest threshold reaching each precision target keeps recall as high as it can.

# %%
def lowest_with_precision(sweep: pd.DataFrame, target: float) -> pd.Series:
    ok = sweep[(sweep["precision"] >= target) & (sweep["flagged"] > 0)]
    return ok.iloc[0] if len(ok) else sweep.iloc[-1]


suggested = pd.DataFrame(
    {
        "block (precision >= 0.99)": lowest_with_precision(sweep, 0.99),
        "review (precision >= 0.90)": lowest_with_precision(sweep, 0.90),
    }
).T[["threshold", "precision", "recall", "tp", "fp", "fn"]]
suggested

# %%
current = sweep.set_index("threshold").reindex(
    [round(settings.review_threshold, 2), round(settings.block_threshold, 2)]
)
current[["flagged", "tp", "fp", "fn", "precision", "recall"]]
