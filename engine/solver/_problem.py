"""What the path solver minimises and the state it carries from λ to λ, shared by the path loop
(engine/solver/_path.py) and its two Newton solvers (`_newton_l1.py` for penalties on single
coefficients, `_newton_group.py` for group L1 with K outputs): the problem, the warm-started state,
the Armijo line search both Newton solvers end their steps with, and the Helmert basis of the
multinomial's shift-free coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from neurosel.solver._protocols import Datafit, Design, Penalty

if TYPE_CHECKING:
    from neurosel.solver._newton_group import GroupModel

MAX_NEWTON = 25  # Newton steps per working set (L1); the group solver's per full pass: × MAX_OUTER
MAX_SWEEPS = 2000  # coordinate-descent sweeps per Newton step, in all
INNER_FLOOR = 0.1  # inner solves stop at this times tol · λα at the latest (then the gap cannot exceed ~tol)
ARMIJO = 1e-4


@dataclass(frozen=True)
class Problem:
    """What is minimised: datafit(y, Z W + b) + λ(α Ω(W) + (1 − α)/2 ‖W‖²), to a gap of tol · scale."""

    design: Design
    y: np.ndarray
    datafit: Datafit
    penalty: Penalty
    l1_ratio: float = 1.0
    fit_intercept: bool = True
    tol: float = 1e-6

    def penalties(self, lam: float) -> tuple[float, float]:
        """(λα, λ(1 − α)): the L1 and ridge strengths at λ."""
        return lam * self.l1_ratio, lam * (1 - self.l1_ratio)


@dataclass
class PathState:
    """The solver's state, warm-started from λ to λ: coefficients W (p, K), intercepts b (K,),
    margins M = Z W + b (n, K), the working set, the last full gradient Zᵀ ∇ (p, K), and (group L1)
    the kept quadratic model."""

    w: np.ndarray
    b: np.ndarray
    m: np.ndarray
    work: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    gradient: np.ndarray | None = None
    certified_at: np.ndarray | None = None  # the margins the last λ was certified at (the same object)
    model: GroupModel | None = None  # group L1: the working set's kept quadratic model
    exact: bool = False  # Hessians in float64 arithmetic on a float32 design (after slow progress)

    @classmethod
    def null(cls, problem: Problem) -> PathState:
        """All coefficients zero, intercepts at their optimum (or zero without intercept)."""
        n, p = problem.design.shape
        k_out = problem.datafit.outputs(problem.y)
        b = problem.datafit.null_intercept(problem.y) if problem.fit_intercept else np.zeros(k_out)
        return cls(w=np.zeros((p, k_out)), b=b, m=np.broadcast_to(b, (n, k_out)).copy())

    @property
    def active(self) -> np.ndarray:
        return np.any(self.w != 0, axis=1)


def line_search(
    problem: Problem,
    state: PathState,
    work: np.ndarray,
    delta: np.ndarray,
    zdelta: np.ndarray,
    grad: np.ndarray,
    l1: float,
    l2: float,
) -> float:
    """Armijo backtracking along a Newton direction; updates `state` and returns the decrease of the
    objective (0 for a nil step)."""
    if not np.any(delta):
        return 0.0
    y, datafit, penalty = problem.y, problem.datafit, problem.penalty
    q, k_out = work.size, state.w.shape[1]
    coef_delta = delta[: q * k_out].reshape(q, k_out)
    w_work = state.w[work]
    before = datafit.value(y, state.m) + penalty.value(w_work, l1, l2)
    slope = grad @ delta + penalty.value(w_work + coef_delta, l1, l2) - penalty.value(w_work, l1, l2)
    t = 1.0
    while True:
        after = datafit.value(y, state.m + t * zdelta) + penalty.value(w_work + t * coef_delta, l1, l2)
        if after <= before + ARMIJO * t * slope or t < 1e-10:
            break
        t *= 0.5
    state.w = state.w.copy()
    state.w[work] += t * coef_delta
    if problem.fit_intercept:
        state.b = state.b + t * delta[q * k_out :]
    state.m = state.m + t * zdelta
    return before - after


def helmert(k_out: int) -> np.ndarray:
    """The Helmert basis (K × (K − 1)) of the vectors orthogonal to (1, …, 1), orthonormal."""
    basis = np.zeros((k_out, k_out - 1))
    for j in range(1, k_out):  # Helmert: (1, …, 1, −j, 0, …) / √(j (j + 1))
        basis[:j, j - 1] = 1.0
        basis[j, j - 1] = -j
        basis[:, j - 1] /= np.sqrt(j * (j + 1.0))
    return basis
