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
# # Investigating one account
#
# Why did an account get its decision, who are its neighbours, and how does its activity line
# up with theirs? Set `SENTRA_ACCOUNT` to investigate a given account; by default the
# highest-scored blocked account of the latest run is taken.

# %%
import os

import pandas as pd
from rich.console import Console

from sentra_graph.explain import explain_account, render_explanation
from sentra_graph.explore import (
    draw_farm,
    load_run,
    notebook_store,
    plot_template_mix,
    plot_timeline,
    shared_entities,
)

data = notebook_store(n_accounts=1500, seed=0)
run = load_run(data.store)
decisions = data.store.run_decisions(run.run_id).sort_values("score", ascending=False)
account = os.environ.get("SENTRA_ACCOUNT") or decisions.iloc[0]["account_id"]
print("investigating", account)

# %% [markdown]
# ## The decision and its reasons

# %%
explanation = explain_account(data.store, account)
render_explanation(explanation, Console(width=120))

# %%
if data.truth is not None:
    display(data.truth[data.truth["account_id"] == account])

# %% [markdown]
# ## What it shares, entity by entity
# For each card, IP, device, user agent and template the account used: its own requests, how
# many other accounts share it, and how many of those are in its farm.

# %%
for kind, frame in explanation.evidence.items():
    if len(frame):
        print(kind)
        display(frame.head(8))

# %% [markdown]
# ## Its neighbours
# Accounts sharing at least one entity with it (entities shared by hundreds of accounts, such
# as a popular client's user agent, are too common to count).

# %%
neighbours = explanation.neighbours
neighbours

# %% [markdown]
# ## Its timeline beside its neighbours'
# The account and its ten closest neighbours, requests per time bin.

# %%
close = [account] + neighbours["account_id"].head(10).tolist()
requests = data.store.account_requests(close, *explanation.window)
plot_timeline(requests);

# %%
plot_template_mix(requests);

# %% [markdown]
# The entities they share; the investigated account is ringed.

# %%
accounts = data.store.account_rows(close)
draw_farm(shared_entities(accounts, requests), decisions=decisions, highlight=account);

# %% [markdown]
# ## What it asked
# Its earliest prompts, a few per template.

# %%
prompts = data.store.prompt_examples(
    account_ids=[account], start=explanation.window[0], end=explanation.window[1], per_template=3
)
pd.set_option("display.max_colwidth", 160)
prompts[["ts", "template_id", "prompt"]]
