"""evaluate() on hand-made decisions with known precision and recall."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sentra_graph.evaluate import ALL, evaluate, summarise


@pytest.fixture
def truth() -> pd.DataFrame:
    rows = (
        [(f"h{i}", "farm", "hydra", "hydra-0") for i in range(10)]
        + [(f"c{i}", "farm", "cell", "cell-0") for i in range(5)]
        + [(f"t{i}", "farm", "cell", "cell-1") for i in range(3)]  # too small to count
        + [(f"e{i}", "lookalike", "enterprise", "enterprise-0") for i in range(20)]
        + [(f"o{i}", "legit", "organic", None) for i in range(65)]
    )
    return pd.DataFrame(rows, columns=["account_id", "role", "kind", "group"])


@pytest.fixture
def decisions() -> pd.DataFrame:
    rows = (
        [(f"h{i}", "block", "F1") for i in range(8)]  # 8 of 10 hydra blocked
        + [("h8", "review", "F1")]  # one more reviewed, h9 missed
        + [(f"c{i}", "review", "F2") for i in range(5)]  # the cell only reviewed
        + [("t0", "block", "F3")]  # a blocked member of a farm below the minimum size
        + [("e0", "block", "F1"), ("e1", "review", None)]  # look-alikes caught
        + [("o0", "block", None)]
        + [(f"o{i}", "allow", None) for i in range(1, 65)]  # o64 missing: allowed
    )
    return pd.DataFrame(rows, columns=["account_id", "decision", "cluster_id"])


def _row(table: pd.DataFrame, role: str, kind: str) -> pd.Series:
    return table.set_index(["role", "kind"]).loc[(role, kind)]


def test_overall_farm_precision_and_recall(truth: pd.DataFrame, decisions: pd.DataFrame) -> None:
    table = evaluate(decisions, truth)
    farm = _row(table, "farm", ALL)
    # blocked: h0-h7, t0 (farm) + e0, o0 -> 9 farm of 11
    assert farm["precision_block"] == pytest.approx(9 / 11)
    # eligible farm accounts: 10 hydra + 5 cell (cell-1 has 3 accounts) -> 8 blocked of 15
    assert farm["accounts"] == 15
    assert farm["recall_block"] == pytest.approx(8 / 15)
    # reviewed or blocked: 9 hydra + 5 cell + t0 (farm), e0, e1, o0 -> 15 of 18
    assert farm["precision_review"] == pytest.approx(15 / 18)
    assert farm["recall_review"] == pytest.approx(14 / 15)


def test_per_kind_rows(truth: pd.DataFrame, decisions: pd.DataFrame) -> None:
    table = evaluate(decisions, truth)
    hydra = _row(table, "farm", "hydra")
    assert hydra["recall_block"] == pytest.approx(0.8)
    assert hydra["recall_review"] == pytest.approx(0.9)
    # e0 was blocked inside the hydra's cluster F1: 8 / (8 + 1)
    assert hydra["precision_block"] == pytest.approx(8 / 9)
    cell = _row(table, "farm", "cell")
    assert cell["accounts"] == 5 and cell["groups"] == 2
    assert cell["recall_block"] == 0 and cell["recall_review"] == 1
    assert cell["precision_block"] == 1  # t0, blocked in a cluster without innocents
    enterprise = _row(table, "lookalike", "enterprise")
    assert (enterprise["blocked"], enterprise["review_or_block"]) == (1, 2)
    assert enterprise["block_rate"] == pytest.approx(1 / 20)
    assert np.isnan(enterprise["recall_block"])
    organic = _row(table, "legit", "organic")
    assert organic["accounts"] == 65 and organic["blocked"] == 1
    assert list(table["role"].unique()) == ["farm", "lookalike", "legit"]


def test_min_farm_size_and_missing_cluster_ids(
    truth: pd.DataFrame, decisions: pd.DataFrame
) -> None:
    table = evaluate(decisions.drop(columns="cluster_id"), truth, min_farm_size=1)
    farm = _row(table, "farm", ALL)
    assert farm["accounts"] == 18
    assert farm["recall_block"] == pytest.approx(9 / 18)
    assert np.isnan(_row(table, "farm", "hydra")["precision_block"])


def test_perfect_engine_and_unknown_accounts(truth: pd.DataFrame) -> None:
    perfect = truth.assign(decision=np.where(truth["role"] == "farm", "block", "allow"))
    farm = _row(evaluate(perfect, truth), "farm", ALL)
    assert farm["precision_block"] == 1 and farm["recall_block"] == 1
    stray = pd.concat(
        [perfect, pd.DataFrame({"account_id": ["zz"], "decision": ["block"]})], ignore_index=True
    )
    farm = _row(evaluate(stray, truth), "farm", ALL)
    assert farm["precision_block"] == pytest.approx(18 / 19)


def test_summarise_lists_every_row(truth: pd.DataFrame, decisions: pd.DataFrame) -> None:
    table = evaluate(decisions, truth)
    text = summarise(table)
    lines = text.splitlines()
    assert len(lines) == len(table) + 3
    assert any(line.startswith("farm      hydra") and "80.0" in line for line in lines)
