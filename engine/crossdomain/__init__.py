"""Cross-domain transfer with selected neurons, and per-layer fingerprints.

Rankings (`_rankings`: the sparse path's, statistics-only, the scikit-learn recipe), domains held
in memory with their statistics (`_domains`), the dense classifier (`_classifier`), single- and
multi-source transfer against baselines (`_transfer`, `_multisource`; the fits and scores in
`_evaluate`, what a call returns in `_result`), and fingerprints with the similarity–transfer
analysis (`_fingerprint`); `_paths` records what the sparse path behind a selection did
(`PathRecord`). Target labels only ever score.
"""

from __future__ import annotations

from neurosel.crossdomain._classifier import Fitted
from neurosel.crossdomain._classifier import fit as fit_classifier
from neurosel.crossdomain._classifier import score as score_classifier
from neurosel.crossdomain._domains import (
    IN_CORE_BYTES,
    Activations,
    load_activations,
    pooled_statistics,
    standardise,
)
from neurosel.crossdomain._fingerprint import (
    MEASURES,
    Fingerprints,
    domain_distance,
    fingerprint,
    partial_spearman,
    similarity,
    similarity_matrix,
    spearman_permutation,
    transferability,
)
from neurosel.crossdomain._multisource import contribution, scenario_ranking
from neurosel.crossdomain._paths import PathRecord
from neurosel.crossdomain._rankings import (
    AUTO_RANKING,
    ELASTIC_L1_RATIO,
    path_options,
    selection_ranking,
    sparse_importance,
    stats_ranking,
)
from neurosel.crossdomain._result import TransferResult, headline
from neurosel.crossdomain._transfer import NORMALISATIONS, transfer
from neurosel.defaults import DEFAULT_KS, DEFAULT_RANKING, RANKINGS

__all__ = [
    "AUTO_RANKING",
    "DEFAULT_KS",
    "DEFAULT_RANKING",
    "ELASTIC_L1_RATIO",
    "IN_CORE_BYTES",
    "MEASURES",
    "NORMALISATIONS",
    "RANKINGS",
    "Activations",
    "Fingerprints",
    "Fitted",
    "PathRecord",
    "TransferResult",
    "contribution",
    "domain_distance",
    "fingerprint",
    "fit_classifier",
    "headline",
    "load_activations",
    "partial_spearman",
    "path_options",
    "pooled_statistics",
    "scenario_ranking",
    "score_classifier",
    "selection_ranking",
    "similarity",
    "similarity_matrix",
    "sparse_importance",
    "spearman_permutation",
    "standardise",
    "stats_ranking",
    "transfer",
    "transferability",
]
