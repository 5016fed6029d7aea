"""The method registry: one entry per importance method, the one place that says, for a method name,
which labels it serves, its loss, its penalties and how a classifier on those labels is scored.

`importance`, `SparseLogisticSelector`, the path records and rankings of `neurosel.crossdomain`
and the experiments runner all read it; the CLI takes its `--method` choices from `METHODS`. A new
loss is its datafit (the `Datafit` protocol), one `register_method` call and its test
(tests/solver/test_methods.py registers a toy loss and checks its path against scipy).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from neurosel.errors import InputError
from neurosel.solver._datafits import Logistic, Multinomial, Quadratic
from neurosel.solver._penalties import PENALTIES
from neurosel.solver._protocols import Datafit

LABEL_KINDS = ("class", "numeric")


@dataclass(frozen=True)
class Method:
    """An importance method.

    `label_kind`: the labels it fits, "class" (binary or multi-class, up to `max_classes`; None: any
    number) or "numeric". `datafit(classes, weights)`: its loss for labels with `classes` classes
    (1 for numeric labels) and per-example weights (None = all ones). `default_penalty(classes)`: the
    penalty name used when the caller names none; `penalties`: the names it accepts (`PENALTIES`).
    `metric`: the headline score of a classifier on its labels ("accuracy", "pearson")."""

    name: str
    label_kind: str
    datafit: Callable[[int, np.ndarray | None], Datafit]
    default_penalty: Callable[[int], str]
    penalties: tuple[str, ...] = tuple(PENALTIES)
    metric: str = "accuracy"
    max_classes: int | None = None

    def serves(self, label_kind: str, classes: int = 1) -> bool:
        """Whether it fits labels of `label_kind` with `classes` classes."""
        many = self.max_classes is not None and classes > self.max_classes
        return self.label_kind == label_kind and not (label_kind == "class" and many)

    def penalty(self, name: str | None, classes: int) -> str:
        """The penalty `name` (checked against `penalties`), or the default for `classes` classes."""
        if name is None:
            return self.default_penalty(classes)
        if name not in self.penalties:
            raise InputError(f"penalty {name!r}: use one of {', '.join(self.penalties)}")
        return name


def _logistic(classes: int, weights: np.ndarray | None) -> Datafit:
    return Logistic(weights) if classes == 2 else Multinomial(weights)


METHODS: dict[str, Method] = {
    "l1-logistic": Method(  # binary L1 for two classes, multinomial with a group-L1 penalty for K > 2
        "l1-logistic", "class", _logistic, lambda k: "group-l1" if k > 2 else "l1", metric="accuracy"
    ),
    "lasso": Method(
        "lasso", "numeric", lambda k, weights: Quadratic(weights), lambda k: "l1", metric="pearson"
    ),
}
"""Importance methods by name, in registration order (the first serving a label kind is its default)."""


def register_method(method: Method) -> Method:
    """Add `method` to `METHODS` (InputError if its name is taken); returns it."""
    if method.name in METHODS:
        raise InputError(f"method {method.name!r}: already registered")
    if method.label_kind not in LABEL_KINDS:
        raise InputError(f"method {method.name!r}: label kind {method.label_kind!r}; use class or numeric")
    unknown = set(method.penalties) - set(PENALTIES)
    if unknown:
        raise InputError(f"method {method.name!r}: unknown penalties {sorted(unknown)}")
    METHODS[method.name] = method
    return method


def unregister_method(name: str) -> None:
    """Remove a method added by `register_method`."""
    METHODS.pop(name, None)


def get_method(name: str) -> Method:
    """The registered method `name`; InputError naming the choices otherwise."""
    if name not in METHODS:
        raise InputError(f"method {name!r}: use one of {', '.join(METHODS)}")
    return METHODS[name]


def method_for(label_kind: str, n_classes: int = 1) -> str:
    """The default method for labels of `label_kind` with `n_classes` classes: the first registered
    that serves them ("l1-logistic" for classes, "lasso" for numeric labels)."""
    for method in METHODS.values():
        if method.serves(label_kind, n_classes):
            return method.name
    raise InputError(f"label kind {label_kind!r}: no method fits it; use one of {', '.join(LABEL_KINDS)}")


def metric_for(label_kind: str) -> str:
    """The headline metric of a classifier on labels of `label_kind` (its default method's metric)."""
    return METHODS[method_for(label_kind, 2)].metric


# The multinomial path's cost grows faster than the classes (measured on 2,000 rows × 96 neurons, 2
# cores: 10 classes 1.8 s, 40 classes 18 s; 160 classes ran past 300 s): above this many classes it
# is refused before any work rather than left to run for hours.
MAX_CLASSES = 100


def check_classes(labels: np.ndarray, where: str) -> int:
    """The number of classes in `labels`; InputError for a single class, or more than MAX_CLASSES."""
    classes = np.unique(labels)
    if classes.size < 2:
        raise InputError(f"{where}: only one class ({classes[0]!r}); sparse logistic needs two or more")
    if classes.size > MAX_CLASSES:
        raise InputError(
            f"{where}: {classes.size:,} classes; the sparse multinomial path is refused above {MAX_CLASSES} "
            "(its cost grows faster than the classes: 40 classes take ~10x the time of 10): merge classes, "
            "or score neurons with neuron_stats (per-class statistics scale with the classes)"
        )
    return int(classes.size)
