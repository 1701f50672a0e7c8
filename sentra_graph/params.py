"""Frozen algorithm knobs, recorded with every run.

Thresholds that operators set (block/review) live in :mod:`sentra_graph.config`; these are the
engine's internal parameters, tuned on synthetic scenarios and logged so a run can be reproduced.

>>> EngineParams().cluster.resolution > 0
True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class TemplateParams:
    """Prompt-template clustering (HDBSCAN on reduced prompt embeddings)."""

    sample_size: int = 20_000
    n_features: int = 2**16
    svd_components: int = 64
    reduced_dims: int = 8
    """Dimensions HDBSCAN works in; nearest-neighbour queries slow down sharply above ~10."""
    min_cluster_size: int = 15
    min_samples: int = 5
    cluster_selection_epsilon: float = 0.05
    """Clusters closer than this (unit-sphere distance) are merged: one template, not one
    cluster per slot-value variant."""
    max_core_distance: float = 0.15
    """A template's prompts are near-duplicates: clusters whose members' median distance to
    their ``min_samples``-th neighbour exceeds this are broad topics and become noise."""
    batch_size: int = 200_000
    min_strength: float = 0.0
    """Assignments weaker than this (HDBSCAN membership strength in [0, 1]) become noise. Off
    by default: a cluster holding exact duplicates has an infinite density peak, so HDBSCAN
    gives its other members strength 0."""
    max_chars: int = 300
    """Characters of a normalised prompt embedded: its head and tail, where instructions sit."""
    skeleton_head: int = 6
    skeleton_tail: int = 6
    """Words of a normalised prompt's start and end that make its skeleton (the wrapper a script
    puts around varying content). A prompt with more words than ``skeleton_head +
    skeleton_tail`` gets its skeleton's id instead of a fitted template's: fitted on a sample,
    templates only exist for wrappers common enough to be sampled, skeletons for any wrapper.
    Shorter prompts keep the fitted templates. 0 and 0: fitted templates only."""
    embedder: str = "hashing"
    """"hashing" (model-free, default) or "sentence-transformers" (extra ``[embeddings]``)."""
    text_model: str | None = None
    """Local sentence-transformers model directory; None: the packaged all-MiniLM-L6-v2."""
    n_jobs: int = -1
    """Threads for nearest-neighbour queries while assigning (-1: all cores)."""


@dataclass(frozen=True)
class BehaviourParams:
    """Per-account behaviour aggregates and activity histograms."""

    bin_minutes: float = 10.0
    """Width of the activity bins used for lockstep (timing synchronisation) evidence."""


@dataclass(frozen=True)
class GraphParams:
    """The account <-> entity graph and its weighted account projection.

    Type weights scale each entity type's contribution to an account pair's link weight;
    ``rarity_power`` sets how fast a shared entity's weight falls with the number of org units
    behind it (weight ~ 1 / (units - 1) ** rarity_power); entities behind more than
    ``max_degree`` accounts link nobody (they say nothing about a pair and cost degree**2).
    """

    w_payment: float = 1.0
    w_signup_ip: float = 0.6
    w_signup_prefix: float = 0.25
    w_ip: float = 0.6
    w_prefix: float = 0.25
    w_device: float = 0.1
    w_tls: float = 0.1
    w_template: float = 0.3
    rarity_power: float = 0.5
    max_degree: int = 800
    min_entity_weight: float = 0.02
    """Entities weaker than this (type weight x rarity) link nobody: noise-level, costly."""
    max_pairs: int = 30_000_000
    """Budget of account pairs the projection may enumerate (the most shared entities go)."""
    pair_block: int = 3_000_000
    """Account pairs enumerated per block of the projection (bounds its peak memory)."""
    min_link: float = 0.02
    """Account pairs linked more weakly than this are dropped from the projection."""
    same_org_factor: float = 0.0
    """Multiplier of links between accounts of the same org (an open relationship)."""


@dataclass(frozen=True)
class LockstepParams:
    """Lockstep groups: HDBSCAN on reduced per-account activity histograms."""

    min_active_bins: int = 6
    min_active_days: int = 2
    """Accounts active on fewer distinct days take no part in timing evidence."""
    dims: int = 16
    """Dimensions of the random projection HDBSCAN runs in."""
    sample_size: int = 6_000
    seed_size: int = 3
    """HDBSCAN's min_cluster_size on the sample: a group shows up through a few sampled
    members; the full-space check then needs ``min_cluster_size`` members."""
    min_cluster_size: int = 5
    min_samples: int = 3
    selection: str = "leaf"
    """HDBSCAN cluster selection: ``leaf`` finds the small tight groups sought here, where
    ``eom`` may prefer one large, loose cluster that the full-space check then rejects."""
    min_sync: float = 0.2
    """Least mean excess co-activity (cosine above the window's baseline) to keep a group."""


@dataclass(frozen=True)
class ClusterParams:
    """Community detection on the thresholded account projection."""

    min_edge_weight: float = 0.12
    resolution: float = 1.0
    min_modularity: float = 0.2
    """A component is split only when its best partition reaches this modularity."""
    min_split_size: int = 5
    """Connected components smaller than this are kept whole (Louvain is not run on them)."""
    networkit_min_nodes: int = 2_000
    """Components at least this large run networkit PLM; smaller ones networkx Louvain."""
    min_cluster_size: int = 2
    """Communities smaller than this are not reported as clusters."""
    min_jaccard: float = 0.3
    """Least member overlap with a previous run's cluster to inherit its id."""


@dataclass(frozen=True)
class RiskParams:
    """Farm and account scoring.

    Each member's evidence channels (payment, network, device, content, timing, sign-up) are
    in [0, 1]; reduced to independent signals (``channel_groups``, ``colocated``) and sorted
    strongest first they are combined with ``channel_weights``, so that no single shared
    attribute reaches review on its own and a block takes a conjunction; farms are scored on
    the members that each show it (see :func:`sentra_graph.risk.scoring.farm_scores`).
    """

    channel_groups: tuple[tuple[str, ...], ...] = (
        ("payment",),
        ("network", "device"),
        ("content",),
        ("timing",),
        ("signup",),
    )
    """Channels grouped into independent signals (a group counts once, by its strongest)."""
    colocated: tuple[str, ...] = ("network", "timing", "signup")
    """Groups (named by their first channel) a co-located legitimate cohort shares: one signal,
    two only when all agree."""
    channel_weights: tuple[float, ...] = (0.4, 0.52, 0.25, 0.15, 0.1)
    """Weights of the strongest, second, third... channel present."""
    channel_full: float = 0.6
    """Channel strength that counts as fully present."""
    channel_floor: float = 0.15
    """Channel strength below which a channel counts as absent (chance sharing)."""
    size_mid: float = 4.0
    """Group size at which the size factor is one half (families are 2-4 accounts)."""
    size_width: float = 0.5
    """Steepness of the logistic size factor (0.88 at ``size_mid`` + 1, 0.02 at 2)."""
    size_cap: int = 8
    """Group size beyond which the size factor no longer grows (it is ~1 there)."""
    ip_concentration: float = 0.3
    """Least share of an IP's / device's accounts inside the farm for it to count as shared."""
    template_min_share: float = 0.3
    """Least share of a farm's org units using a template for it to count as the farm's."""
    template_concentration: float = 0.25
    """Least share of a template's accounts inside the farm for it to count as the farm's."""
    signup_burst_minutes: float = 60.0
    """Accounts created within this of each other count as one sign-up burst."""
    dormant_share: float = 0.9
    """Share of its farm's score a dormant member tied to the farm by sign-up inherits."""
    behaviour_cap: float = 0.4
    """Highest score an account reaches from its own behaviour alone (no group)."""
    feedback_pull: float = 0.3
    """Score added to accounts fully linked to analyst-confirmed farm accounts."""
    model: str = "transparent"
    """``transparent`` (weighted evidence) or ``supervised`` (gradient boosting on labels)."""
    min_labels: int = 20
    """Least labels per class before the supervised model replaces the transparent score."""


@dataclass(frozen=True)
class EngineParams:
    """Every knob of a detection run, recorded with the run (:meth:`as_dict`)."""

    seed: int = 0
    templates: TemplateParams = field(default_factory=TemplateParams)
    behaviour: BehaviourParams = field(default_factory=BehaviourParams)
    graph: GraphParams = field(default_factory=GraphParams)
    lockstep: LockstepParams = field(default_factory=LockstepParams)
    cluster: ClusterParams = field(default_factory=ClusterParams)
    risk: RiskParams = field(default_factory=RiskParams)

    def as_dict(self) -> dict:
        return asdict(self)
