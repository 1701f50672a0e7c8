"""Frozen algorithm knobs, recorded with every run.

Thresholds that operators set (block/review) live in :mod:`sentra_graph.config`; these are the
engine's internal parameters, tuned on synthetic scenarios and logged so a run can be reproduced.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class TemplateParams:
    """Prompt-template clustering (HDBSCAN on reduced prompt embeddings)."""

    sample_size: int = 20_000
    n_features: int = 2**16
    svd_components: int = 64
    reduced_dims: int = 16
    min_cluster_size: int = 15
    min_samples: int = 5
    batch_size: int = 50_000


@dataclass(frozen=True)
class EngineParams:
    seed: int = 0
    templates: TemplateParams = field(default_factory=TemplateParams)

    def as_dict(self) -> dict:
        return asdict(self)
