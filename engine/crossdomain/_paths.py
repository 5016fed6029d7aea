"""The sparse path behind a top-k selection, in numbers a result records (method.md, section 1).

A top-k selection is honest only with three facts beside it: how many neurons entered the path at
all, whether the path stopped early because the examples were separated (smaller λs only memorise,
so the solver stops there), and how many of the k selected neurons never entered and were ranked by
another rule (closeness to entering) instead of entry order. `path_record` reads them off an
`Importance`, fresh or read back from the store, so a result says the same whether or not its path
was saved. `reusable_support` finds a saved path that a top-k selection can use instead of solving
a new one.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from neurosel.errors import SupportWarning
from neurosel.solver import (
    IMPORTANCE,
    IMPORTANCE_OPTIONS,
    PENALTIES,
    SEPARATED,  # the solver's stopping rule
    Importance,
    example_weights,
    get_method,
    importance_params,
)
from neurosel.store import ActivationStore, saved_metas

BY_ENTRY = ("entry", "elastic-net")  # ranking rules that rank by entry (the others fill on purpose)
# A path-based ranking rule (every rule but "fisher") ranks the first n // EXAMPLES_PER_NEURON
# neurons of a source with n examples; the rest are ranked by the statistics-only score (Fisher,
# |Pearson r|). Past that many, what the path adds is fitted to the source's own examples: on STS-B
# and Amazon its later neurons transfer worse than random ones (docs/method.md, section 1). Ten
# examples per estimated coefficient is the usual rule of thumb for a linear model (Harrell,
# *Regression Modeling Strategies*, 2015, section 4.4), stated here, not fitted to a dataset.
EXAMPLES_PER_NEURON = 10


def trusted_size(n: int) -> int:
    """How many neurons a path-based rule ranks on `n` source examples (at least 1): the rest of its
    ranking is the statistics-only score's (`fill_by_stats`)."""
    return max(1, int(n) // EXAMPLES_PER_NEURON)


def fill_by_stats(ranking: np.ndarray, stats_rank: np.ndarray, trusted: int) -> np.ndarray:
    """`ranking`'s first `trusted` neurons, then every other neuron in `stats_rank`'s order."""
    head = ranking[:trusted]
    return np.concatenate([head, stats_rank[~np.isin(stats_rank, head)]])


@dataclass(frozen=True)
class PathRecord:
    """What the sparse path behind one store's top-k selection did.

    `entered`: neurons with a non-zero weight at some λ of the path. `separation_lambda`: the λ at
    which the path stopped because the examples were separated (its last λ), None if it did not stop
    for that reason. `filled`: how many of the `k` selected neurons never entered the path, so were
    ranked by closeness to entering (gradient norm / λ at the last λ) rather than by entry; it is
    max(0, k − entered), as entered neurons always rank first.
    """

    name: str  # dataset name
    store: str  # the store's path
    k: int
    entered: int
    filled: int
    separation_lambda: float | None
    lambda_max: float  # the path's first λ (every weight zero)
    target_support: int | None  # the support the path was asked to reach (None: the whole λ grid)
    key: str  # the path is saved in the store under importance/<key>
    ranking: str = "entry"  # the rule that ranked the selection (neurosel.crossdomain.RANKINGS)
    trusted: int | None = None  # the rule ranked this many; the rest by the statistics score (None: all)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One line for people: entered, where and why the path stopped, what was filled."""
        return f"{self.name}: {self._facts()}"

    def _facts(self) -> str:
        text = f"{self.entered} neuron{'s' * (self.entered != 1)} entered the sparse path"
        if self.separation_lambda is not None:
            text += (
                f", which stopped at λ = {self.separation_lambda:.4g} "
                f"({self.separation_lambda / self.lambda_max:.3g} λ_max) because the examples are separated"
            )
        past = self.trusted is not None and self.k > self.trusted
        if self.ranking in BY_ENTRY:
            text += f"; {self.filled} of the k = {self.k} selected are filled by closeness to entering"
            return text + (f" or, past the first {self.trusted}, by the statistics score" if past else "")
        text += f"; {self.filled} of the k = {self.k} selected by the {self.ranking} ranking never entered it"
        return text + (f" (past its first {self.trusted}, the statistics score ranks)" if past else "")


def path_record(
    imp: Importance,
    store: ActivationStore,
    k: int,
    name: str,
    ranking: np.ndarray | None = None,
    rule: str = "entry",
) -> PathRecord:
    """The record of `imp`'s path for the top `k` of `ranking`, ranked by `rule` (default: the
    path's own entry ranking): `filled` counts the selected neurons that never entered the path.
    `trusted` is the number a path-based rule ranks on the store's examples (`trusted_size`), None
    for the statistics-only rule or the path's own ranking."""
    trusted = None if ranking is None or rule == "fisher" else trusted_size(len(store.labels))
    ranking = imp.ranking if ranking is None else ranking
    filled = int(np.count_nonzero(imp.entry.ravel()[ranking[:k]] < 0))
    return PathRecord(
        name=name, store=str(store.path), k=int(k), entered=imp.entered, filled=filled,
        separation_lambda=separation_lambda(imp, store), lambda_max=float(imp.lambdas[0]),
        target_support=imp.meta["params"]["target_support"], key=imp.meta["key"], ranking=rule,
        trusted=trusted,
    )  # fmt: skip


def separation_lambda(imp: Importance, store: ActivationStore) -> float | None:
    """The λ at which `imp`'s path stopped because the examples were separated, or None.

    The solver stops a path short of its target support when the loss at the last λ is below
    `SEPARATED` times a blind guess's (engine/solver/_path.py) and says so in a warning, which is
    not saved with the path. The same test is made here from what is saved: the loss is the
    objective less the penalty at the last λ, the blind guess's loss comes from the store's labels.
    """
    params = imp.meta["params"]
    target = params["target_support"]
    if target is None or imp.support_sizes[-1] >= target:
        return None  # it ran its whole grid, or reached the support it was asked for
    lam, alpha = float(imp.lambdas[-1]), float(params["l1_ratio"])
    w = imp.coef[-1].reshape(imp.coef.shape[1], -1).T  # (neurons, K) as the solver holds it
    loss = float(imp.objective[-1]) - PENALTIES[imp.penalty]().value(w, lam * alpha, lam * (1 - alpha))
    return lam if loss < SEPARATED * _blind_loss(imp, store) else None


def _blind_loss(imp: Importance, store: ActivationStore) -> float:
    """The datafit's gap scale (a blind guess's loss), with the class weights the path was fitted with."""
    datafit = path_datafit(imp, store.labels, store.meta.get("label_names"))
    return datafit.gap_scale(datafit.targets(store.labels))


def path_datafit(imp: Importance, labels: np.ndarray, names: list[str] | None) -> Any:
    """The datafit `imp`'s path was fitted with: its method's loss for its number of classes, and its
    class weights as example weights."""
    weight = imp.meta["params"]["class_weight"]
    if isinstance(weight, dict):  # saved with its keys as strings: back to the labels' own values
        own = {str(c.item()): c.item() for c in np.unique(labels)}
        weight = {own.get(key, key): value for key, value in weight.items()}
    return get_method(imp.method).datafit(imp.meta["classes"], example_weights(labels, weight, names))


def warn_filled(record: PathRecord, largest: int | None = None) -> None:
    """A SupportWarning, naming the store, when a selection of up to `largest` neurons (default k)
    takes neurons that never entered the path."""
    largest = record.k if largest is None else largest
    if record.entered >= largest:
        return
    curve = f" (and k − {record.entered} of each larger k up to {largest})" if largest > record.k else ""
    warnings.warn(
        f"store {record.store}: {record._facts()}{curve}, not by entry into the path",
        SupportWarning,
        2,
    )


def reusable_support(store: ActivationStore, method: str, k: int, options: dict[str, Any]) -> int | None:
    """The target support of a path saved in `store` that `importance(store, method, **options)`'s top
    k can be read from instead of solving a new path, or None (call importance as given).

    A saved path is compatible when it was fitted with the same method, penalty, l1_ratio, λ grid
    (n_lambdas, lambda_ratio), tol, class weights and rows, and run until at least k neurons entered
    (target_support ≥ k; the smallest such is used). None when `options` set target_support or
    recompute, or when the path of `options` itself is saved (importance reads that one back).
    """
    if options.get("target_support") is not None or options.get("recompute"):
        return None
    keyed = {name: value for name, value in options.items() if name in IMPORTANCE_OPTIONS}
    wanted = importance_params(store, method, **keyed)  # validated as importance validates them
    del wanted["target_support"]
    supports = []
    for meta in saved_metas(store, IMPORTANCE.kind):  # complete paths only; damaged: importance's to report
        params = meta.get("params", {})
        if any(params.get(n) != v for n, v in wanted.items()):
            continue
        support = params.get("target_support")
        if support is None:
            return None
        if support >= k:
            supports.append(support)
    return min(supports, default=None)
