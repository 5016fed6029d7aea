"""Penalties of the sparse path solver on a coefficient matrix W (neurons p × outputs K).

`L1` penalises every coefficient (the lasso and binary / one-vs-rest L1); `GroupL1` penalises each
neuron's row of K weights with its Euclidean norm, so a neuron enters or leaves for all classes at
once (multinomial selection). Both carry an elastic-net share: λ(α·‖·‖ + (1 − α)/2 ‖W‖²). For K = 1
they are the same penalty. The solver asks a penalty for its value, the per-neuron dual norm of a
gradient (which drives λ_max, screening and the dual point), and its KKT residual.
"""

from __future__ import annotations

import numpy as np


class L1:
    """λ(α Σ|W_jk| + (1 − α)/2 ‖W‖²)."""

    name = "l1"
    group = False

    def value(self, w: np.ndarray, l1: float, l2: float) -> float:
        return float(l1 * np.abs(w).sum() + 0.5 * l2 * np.sum(w * w))

    def dual_norm(self, g: np.ndarray) -> np.ndarray:
        """Per neuron: max_k |g_jk|, the quantity compared with λα in the optimality conditions."""
        return np.abs(g).max(axis=1)

    def kkt(self, w: np.ndarray, g: np.ndarray, l1: float, l2: float) -> float:
        """Largest distance of −(g + l2·w) to l1·∂|w|, over all coefficients."""
        smooth = g + l2 * w
        res = np.where(w != 0, np.abs(smooth + l1 * np.sign(w)), np.maximum(np.abs(smooth) - l1, 0.0))
        return float(res.max(initial=0.0))


class GroupL1:
    """λ(α Σ_j ‖W_j‖₂ + (1 − α)/2 ‖W‖²): one group per neuron over its K weights."""

    name = "group-l1"
    group = True

    def value(self, w: np.ndarray, l1: float, l2: float) -> float:
        return float(l1 * np.linalg.norm(w, axis=1).sum() + 0.5 * l2 * np.sum(w * w))

    def dual_norm(self, g: np.ndarray) -> np.ndarray:
        return np.linalg.norm(g, axis=1)

    def kkt(self, w: np.ndarray, g: np.ndarray, l1: float, l2: float) -> float:
        """Largest distance of −(g_j + l2·w_j) to l1·∂‖w_j‖, over all neurons."""
        smooth = g + l2 * w
        norms = np.linalg.norm(w, axis=1, keepdims=True)
        active = norms[:, 0] > 0
        unit = np.divide(w, norms, out=np.zeros_like(w), where=norms > 0)
        on = np.linalg.norm(smooth + l1 * unit, axis=1)
        off = np.maximum(np.linalg.norm(smooth, axis=1) - l1, 0.0)
        return float(np.where(active, on, off).max(initial=0.0))


PENALTIES = {"l1": L1, "group-l1": GroupL1}
