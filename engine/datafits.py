"""Smooth losses of the sparse path solver, on margins m = Z w + b, in mean form (1/n Σ).

Each datafit gives its value, its first and second derivatives in the margins, the exact intercept
when w = 0, and the dual objective used by the duality-gap stopping rule (section "Stopping" of
docs/importance.md). Binary labels are 0/1.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit


class Logistic:
    """Binary log-loss: mean(log(1 + e^m) − y m)."""

    name = "logistic"

    def value(self, y: np.ndarray, m: np.ndarray) -> float:
        return float(np.mean(np.logaddexp(0.0, m) - y * m))

    def gradient(self, y: np.ndarray, m: np.ndarray) -> np.ndarray:
        return (expit(m) - y) / y.size

    def hessian(self, y: np.ndarray, m: np.ndarray) -> np.ndarray:
        p = expit(m)
        return np.maximum(p * (1.0 - p), 1e-12) / y.size

    def null_intercept(self, y: np.ndarray) -> float:
        prior = float(np.clip(np.mean(y), 1e-12, 1 - 1e-12))
        return float(np.log(prior / (1.0 - prior)))

    def dual(self, y: np.ndarray, theta: np.ndarray) -> float:
        """−mean(h(y − θ)) with h(u) = u log u + (1 − u) log(1 − u), for y − θ in [0, 1]."""
        u = np.clip(y - theta, 0.0, 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            h = np.where(u > 0, u * np.log(u), 0.0) + np.where(u < 1, (1 - u) * np.log1p(-u), 0.0)
        return float(-np.mean(h))

    def gap_scale(self, y: np.ndarray) -> float:
        """The gap tolerance unit: log 2, the loss of a blind guess (tol · n · log 2 in sum form)."""
        return float(np.log(2.0))


class Quadratic:
    """Squared loss for numeric targets: ½ mean((y − m)²)."""

    name = "squared"

    def value(self, y: np.ndarray, m: np.ndarray) -> float:
        return float(0.5 * np.mean((y - m) ** 2))

    def gradient(self, y: np.ndarray, m: np.ndarray) -> np.ndarray:
        return (m - y) / y.size

    def hessian(self, y: np.ndarray, m: np.ndarray) -> np.ndarray:
        return np.full(y.size, 1.0 / y.size)

    def null_intercept(self, y: np.ndarray) -> float:
        return float(np.mean(y))

    def dual(self, y: np.ndarray, theta: np.ndarray) -> float:
        """mean(θ y − ½ θ²)."""
        return float(np.mean(theta * y - 0.5 * theta**2))

    def gap_scale(self, y: np.ndarray) -> float:
        """The gap tolerance unit: the loss of the intercept-only model, ½ var(y)."""
        return float(max(0.5 * np.var(y), 1e-300))


DATAFITS = {"logistic": Logistic, "squared": Quadratic}
