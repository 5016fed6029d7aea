"""The sparse path solver and neuron selection.

Contracts (`Datafit`, `Penalty`, `Design`, typed Protocols) apart from their implementations:
losses (`Logistic`, `Multinomial`, `Quadratic`), penalties (`L1`, `GroupL1`), designs (`ArrayDesign`
in memory, `BlockDesign` over any block stream, `store_design` to pick GPU, in core or streamed for
a store). `sparse_path` is proximal Newton with working sets over those contracts; `importance`
runs it on a store and ranks neurons by entry; `stability_selection` ranks them by how often they are
selected over half-subsamples; `select` turns a ranking into a selection; and
`SparseLogisticSelector` is the same solver as a scikit-learn selector. `METHODS` is the method
registry (label kind, datafit, penalties, metric per method name; `register_method` adds a loss).

`SparseLogisticSelector` and `ConvergenceWarning` import scikit-learn, so they load on first use.
"""

from __future__ import annotations

from typing import Any

from neurosel.errors import SupportWarning
from neurosel.solver._datafits import Logistic, Multinomial, Quadratic, example_weights, reweighted
from neurosel.solver._design import ArrayDesign, BlockDesign
from neurosel.solver._importance import (
    IMPORTANCE,
    IMPORTANCE_OPTIONS,
    IMPORTANCE_PARAMS,
    Importance,
    importance,
    importance_params,
    rank_by_entry,
)
from neurosel.solver._methods import (
    METHODS,
    Method,
    check_classes,
    get_method,
    method_for,
    metric_for,
    register_method,
    unregister_method,
)
from neurosel.solver._path import (
    SEPARATED,
    PathResult,
    PathState,
    Problem,
    lambda_max,
    sparse_path,
)
from neurosel.solver._penalties import L1, PENALTIES, GroupL1
from neurosel.solver._protocols import Datafit, Design, Penalty
from neurosel.solver._selection import RULES, Selection, layer_counts, select
from neurosel.solver._stability import (
    STABILITY,
    SUBSAMPLE_TOL,
    SUBSAMPLES,
    Stability,
    half_subsamples,
    rank_by_frequency,
    stability_selection,
)
from neurosel.solver._store_design import store_design

__all__ = [
    "IMPORTANCE",
    "IMPORTANCE_OPTIONS",
    "IMPORTANCE_PARAMS",
    "L1",
    "METHODS",
    "PENALTIES",
    "RULES",
    "SEPARATED",
    "STABILITY",
    "SUBSAMPLES",
    "SUBSAMPLE_TOL",
    "ArrayDesign",
    "BlockDesign",
    "ConvergenceWarning",
    "Datafit",
    "Design",
    "GroupL1",
    "Importance",
    "Logistic",
    "Method",
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
    "get_method",
    "half_subsamples",
    "importance",
    "importance_params",
    "lambda_max",
    "layer_counts",
    "method_for",
    "metric_for",
    "rank_by_entry",
    "rank_by_frequency",
    "register_method",
    "reweighted",
    "select",
    "sparse_path",
    "stability_selection",
    "store_design",
    "unregister_method",
]

_LAZY = {
    "SparseLogisticSelector": "neurosel.solver._selector",
    "ConvergenceWarning": "neurosel.errors",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'neurosel.solver' has no attribute {name!r}")
