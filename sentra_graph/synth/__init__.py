"""The synthetic traffic generator used by the demo, tests, notebooks and benchmarks.

>>> s = generate(300, days=2, seed=3, requests_per_account=5)
>>> sorted(s.truth["role"].unique())
['farm', 'legit', 'lookalike']
"""

from __future__ import annotations

from sentra_graph.synth.scenario import (
    DEFAULT_END,
    FARM_KINDS,
    FORMATS,
    LOOKALIKE_KINDS,
    Scenario,
    generate,
)

__all__ = ["DEFAULT_END", "FARM_KINDS", "FORMATS", "LOOKALIKE_KINDS", "Scenario", "generate"]
