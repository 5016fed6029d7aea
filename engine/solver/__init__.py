"""The sparse path solver and neuron selection.

Contracts (`Datafit`, `Penalty`, `Design`, typed Protocols) apart from their implementations:
losses (`Logistic`, `Multinomial`, `Quadratic`), penalties (`L1`, `GroupL1`), designs (`ArrayDesign`
in memory, `BlockDesign` over any block stream, `store_design` to pick GPU, in core or streamed for
a store). `sparse_path` is proximal Newton with working sets over those contracts; `importance`
runs it on a store and ranks neurons by entry; `stability_selection` ranks them by how often they are
selected over half-subsamples; `select` turns a ranking into a selection; and
`SparseLogisticSelector` is the same solver as a scikit-learn selector.

`SparseLogisticSelector` and `ConvergenceWarning` import scikit-learn, so they load on first use.
"""

from __future__ import annotations

from typing import Any

from neurosel.errors import SupportWarning
from neurosel.solver._datafits import DATAFITS, Logistic, Multinomial, Quadratic, example_weights
from neurosel.solver._design import ArrayDesign, BlockDesign
from neurosel.solver._importance import METHODS, Importance, importance, rank_by_entry
from neurosel.solver._path import (
    SEPARATED,
    PathResult,
    PathState,
    Problem,
    check_classes,
    lambda_max,
    sparse_path,
)
from neurosel.solver._penalties import L1, PENALTIES, GroupL1
from neurosel.solver._protocols import Datafit, Design, Penalty
from neurosel.solver._selection import RULES, Selection, layer_counts, select
from neurosel.solver._stability import (
    SUBSAMPLES,
    Stability,
    half_subsamples,
    rank_by_frequency,
    stability_selection,
)
from neurosel.solver._store_design import store_design

__all__ = [
    "DATAFITS",
    "L1",
    "METHODS",
    "PENALTIES",
    "RULES",
    "SEPARATED",
    "SUBSAMPLES",
    "ArrayDesign",
    "BlockDesign",
    "ConvergenceWarning",
    "Datafit",
    "Design",
    "GroupL1",
    "Importance",
    "Logistic",
    "Multinomial",
    "PathResult",
    "PathState",
    "Penalty",
    "Problem",
    "Quadratic",
    "Selection",
    "SparseLogisticSelector",
    "Stability",
    "SupportWarning",
    "check_classes",
    "example_weights",
    "half_subsamples",
    "importance",
    "lambda_max",
    "layer_counts",
    "rank_by_entry",
    "rank_by_frequency",
    "select",
    "sparse_path",
    "stability_selection",
    "store_design",
]

_LAZY = {
    "SparseLogisticSelector": "neurosel.solver._selector",
    "ConvergenceWarning": "neurosel.solver._warnings",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'neurosel.solver' has no attribute {name!r}")
