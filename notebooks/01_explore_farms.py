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
# # Explore the farms of the latest run
#
# Which groups of accounts did the latest published run expose, what do they share, and how
# do they behave? This notebook reads the store named by `SENTRA_DATABASE_URL`; without it, it
# generates a small scenario (1,500 accounts), ingests it and runs detection into a temporary
# SQLite store first.

# %%
import pandas as pd
from rich.console import Console

from sentra_graph.explain import explain_account, render_explanation
from sentra_graph.explore import (
    draw_farm,
    load_run,
    notebook_store,
    plot_template_mix,
    plot_timeline,
)

pd.set_option("display.max_colwidth", 120)
data = notebook_store(n_accounts=1500, seed=0)
run = load_run(data.store)
print(f"run {run.run_id}: window {run.window[0]:%Y-%m-%d %H:%M} to {run.window[1]:%Y-%m-%d %H:%M}")
run.decision_counts()

# %% [markdown]
# ## The farms, highest score first

# %%
farms = run.farms()
farms.head(15)

# %% [markdown]
# When the data was generated, the ground truth says what each farm really is: a good farm
# is made of one kind of farm account, not of look-alikes or ordinary users.

# %%
if data.truth is not None and len(farms):
    members = data.store.run_memberships(run.run_id).merge(data.truth, on="account_id", how="left")
    composition = pd.crosstab(members["cluster_id"], members["role"].fillna("unknown"))
    display(composition.loc[farms["cluster_id"].head(15)])

# %% [markdown]
# ## One farm up close
# Its members (strongest membership first), the evidence the engine stored, and the entities
# the members share.

# %%
assert len(farms), "the run found no farm"
farm = run.farm(farms.iloc[0]["cluster_id"])
print(f"farm {farm.cluster_id}: {farm.size} accounts, score {farm.score:.2f}, {farm.decision}")
for reason in farm.reasons:
    print(" -", reason)
farm.members.head(10)

# %%
for name, frame in farm.evidence.items():
    print(name)
    display(frame.head(10))

# %%
shared = farm.shared()
shared.drop_duplicates(["kind", "entity"]).groupby("kind").head(3)

# %% [markdown]
# The bipartite neighbourhood: member accounts (circles, coloured by decision) and the cards,
# IPs, prefixes, devices and prompt templates they share (squares, coloured by kind).

# %%
draw_farm(farm);

# %% [markdown]
# Activity per account over time: bright vertical stripes across many rows are synchronised
# bursts, the signature of one script driving many accounts.

# %%
plot_timeline(farm);

# %%
plot_template_mix(farm);

# %% [markdown]
# ## What the farm asks
# The earliest prompts of each of its templates, with the distillation markers they carry.

# %%
farm.prompts(per_template=2).head(12)

# %% [markdown]
# ## One member explained
# The same explanation `sentra-graph explain ACCOUNT` prints.

# %%
member = farm.members.iloc[0]["account_id"]
explanation = explain_account(data.store, member)
render_explanation(explanation, Console(width=120))
