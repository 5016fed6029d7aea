"""Smooth losses of the sparse path solver, on margins M = Z W + b (n × K), in mean form (1/n Σ).

Each datafit encodes its targets, and gives its value, its first derivatives (n × K) and second
derivatives (n × K × K) in the margins, the exact intercept when W = 0, and the dual objective
used by the duality-gap stopping rule (docs/importance.md, "Stopping"). Optional per-example
weights s_i (class weights) turn the loss into (1/n) Σ s_i ℓ_i, as scikit-learn's class_weight; they
are set at construction only (`Logistic(weights)`), and `reweighted` makes a copy with others.
Which datafit a method uses is the method registry's to say (engine/solver/_methods.py).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, log_softmax, softmax

from neurosel.errors import InputError
from neurosel.solver._protocols import Datafit


class _Datafit:
    """Shared weighting: per-example weights s (None = all ones), fixed at construction."""

    def __init__(self, weights: np.ndarray | None = None) -> None:
        self._weights = weights

    @property
    def weights(self) -> np.ndarray | None:
        return self._weights

    def _w(self, n: int) -> np.ndarray:
        return np.ones(n) if self.weights is None else self.weights

    def _mean(self, values: np.ndarray) -> float:
        return float(np.mean(values if self.weights is None else self.weights * values))


class Logistic(_Datafit):
    """Binary log-loss: mean(s · (log(1 + e^m) − y m)); targets 0/1, one output."""

    name = "logistic"

    def targets(self, labels: np.ndarray) -> np.ndarray:
        classes = np.unique(labels)
        return (labels == classes[-1]).astype(np.float64)

    def outputs(self, y: np.ndarray) -> int:
        return 1

    def value(self, y: np.ndarray, m: np.ndarray) -> float:
        m = m[:, 0]
        return self._mean(np.logaddexp(0.0, m) - y * m)

    def gradient(self, y: np.ndarray, m: np.ndarray) -> np.ndarray:
        return ((expit(m[:, 0]) - y) * self._w(y.size) / y.size)[:, None]

    def hessian(self, y: np.ndarray, m: np.ndarray) -> np.ndarray:
        p = expit(m[:, 0])
        return (np.maximum(p * (1.0 - p), 1e-12) * self._w(y.size) / y.size)[:, None, None]

    def null_intercept(self, y: np.ndarray) -> np.ndarray:
        s = self._w(y.size)
        prior = float(np.clip(np.sum(s * y) / np.sum(s), 1e-12, 1 - 1e-12))
        return np.array([np.log(prior / (1.0 - prior))])

    def dual(self, y: np.ndarray, theta: np.ndarray) -> float:
        """−mean(s · h(y − θ/s)) with h(u) = u log u + (1 − u) log(1 − u), for y − θ/s in [0, 1]."""
        u = np.clip(y - theta[:, 0] / self._w(y.size), 0.0, 1.0)
        return -self._mean(_xlogx(u) + _xlogx(1.0 - u))

    def gap_scale(self, y: np.ndarray) -> float:
        """The gap tolerance unit: log 2, the loss of a blind guess (tol · n · log 2 in sum form)."""
        return float(np.log(2.0) * np.mean(self._w(y.size)))


class Multinomial(_Datafit):
    """Cross-entropy of softmax(M) for K classes: mean(s · (logsumexp(m) − m_y)); one-hot targets."""

    name = "multinomial"
    shift_invariant = True  # adding a constant to every class's margin changes nothing

    def targets(self, labels: np.ndarray) -> np.ndarray:
        classes, ids = np.unique(labels, return_inverse=True)
        return np.eye(classes.size)[ids]

    def outputs(self, y: np.ndarray) -> int:
        return y.shape[1]

    def value(self, y: np.ndarray, m: np.ndarray) -> float:
        return self._mean(-np.sum(y * log_softmax(m, axis=1), axis=1))

    def gradient(self, y: np.ndarray, m: np.ndarray) -> np.ndarray:
        return (softmax(m, axis=1) - y) * (self._w(len(y)) / len(y))[:, None]

    def hessian(self, y: np.ndarray, m: np.ndarray) -> np.ndarray:
        """(diag(p) − p pᵀ) per example, scaled by s_i / n."""
        p = softmax(m, axis=1)
        h = -p[:, :, None] * p[:, None, :]
        k = np.arange(p.shape[1])
        h[:, k, k] += p
        h[:, k, k] = np.maximum(h[:, k, k], 1e-12)
        return h * (self._w(len(y)) / len(y))[:, None, None]

    def null_intercept(self, y: np.ndarray) -> np.ndarray:
        s = self._w(len(y))
        prior = np.clip((s[:, None] * y).sum(0) / s.sum(), 1e-12, None)
        b = np.log(prior)
        return b - b.mean()

    def dual(self, y: np.ndarray, theta: np.ndarray) -> float:
        """−mean(s · Σ_k u_k log u_k) with u = y − θ/s on the simplex (the negative entropy's conjugate)."""
        u = np.clip(y - theta / self._w(len(y))[:, None], 0.0, 1.0)
        return -self._mean(_xlogx(u).sum(1))

    def gap_scale(self, y: np.ndarray) -> float:
        """The gap tolerance unit: log K, the loss of a blind guess among K classes."""
        return float(np.log(y.shape[1]) * np.mean(self._w(len(y))))


class Quadratic(_Datafit):
    """Squared loss for numeric targets: ½ mean(s · (y − m)²)."""

    name = "squared"

    def targets(self, labels: np.ndarray) -> np.ndarray:
        return np.asarray(labels, dtype=np.float64)

    def outputs(self, y: np.ndarray) -> int:
        return 1

    def value(self, y: np.ndarray, m: np.ndarray) -> float:
        return 0.5 * self._mean((y - m[:, 0]) ** 2)

    def gradient(self, y: np.ndarray, m: np.ndarray) -> np.ndarray:
        return ((m[:, 0] - y) * self._w(y.size) / y.size)[:, None]

    def hessian(self, y: np.ndarray, m: np.ndarray) -> np.ndarray:
        return (self._w(y.size) / y.size)[:, None, None]

    def null_intercept(self, y: np.ndarray) -> np.ndarray:
        s = self._w(y.size)
        return np.array([np.sum(s * y) / np.sum(s)])

    def dual(self, y: np.ndarray, theta: np.ndarray) -> float:
        """mean(θ y − ½ θ²/s)."""
        t = theta[:, 0]
        return float(np.mean(t * y - 0.5 * t**2 / self._w(y.size)))

    def gap_scale(self, y: np.ndarray) -> float:
        """The gap tolerance unit: the loss of the intercept-only model, ½ var(y)."""
        return float(max(0.5 * np.var(y) * np.mean(self._w(y.size)), 1e-300))


def example_weights(
    labels: np.ndarray, class_weight: str | dict | None, names: list[str] | None = None
) -> np.ndarray | None:
    """Per-example weights from class weights, as scikit-learn's class_weight: 'balanced'
    (n / (K · n_k)) or {class label, or its name in `names`: weight}; None stays None."""
    if class_weight is None:
        return None
    classes, ids, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if class_weight == "balanced":
        per_class = labels.size / (classes.size * counts)
    elif isinstance(class_weight, dict):
        lookup = {c.item(): i for i, c in enumerate(classes)}
        for i, c in enumerate(classes):
            if names and isinstance(c.item(), int) and 0 <= c.item() < len(names):
                lookup.setdefault(names[c.item()], i)
        per_class = np.ones(classes.size)
        for name, weight in class_weight.items():
            if name not in lookup or not weight > 0:
                raise InputError(f"class_weight {{{name!r}: {weight}}}: unknown class or non-positive weight")
            per_class[lookup[name]] = weight
    else:
        raise InputError(f"class_weight {class_weight!r}: use None, 'balanced' or a dict class → weight")
    return per_class[ids].astype(np.float64)


def reweighted(datafit: Datafit, weights: np.ndarray | None) -> Datafit:
    """The same loss with other per-example weights: a new datafit of the same class (a datafit's
    constructor takes `weights`, its only way to get them)."""
    return type(datafit)(weights=weights)


def _xlogx(u: np.ndarray) -> np.ndarray:
    """u log u with 0 log 0 = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(u > 0, u * np.log(np.where(u > 0, u, 1.0)), 0.0)
