"""The solver's contracts: what a loss, a penalty and a design matrix must offer the path solver.

The path solver (engine/solver/_path.py) is written against these Protocols only, so a new loss
(engine/solver/_datafits.py), penalty (_penalties.py) or place for the data (_design.py: in memory,
streamed from a store, resident on a GPU) plugs in without touching it. Shapes: n examples,
p neurons, K outputs (1 for binary logistic and squared loss, K classes for the multinomial).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Datafit(Protocol):
    """A smooth loss on margins M = Z W + b (n × K), in mean form (1/n Σ_i s_i ℓ_i).

    Its constructor takes the per-example weights (`weights=`, None = all ones), their only way in:
    a datafit is not changed after construction (`reweighted` makes a copy with others)."""

    name: str
    weights: np.ndarray | None  # per-example weights s_i (class weights); None = all ones

    def targets(self, labels: np.ndarray) -> np.ndarray: ...
    def outputs(self, y: np.ndarray) -> int: ...
    def value(self, y: np.ndarray, m: np.ndarray) -> float: ...
    def gradient(self, y: np.ndarray, m: np.ndarray) -> np.ndarray:
        """∂loss/∂M, (n, K)."""
        ...

    def hessian(self, y: np.ndarray, m: np.ndarray) -> np.ndarray:
        """∂²loss/∂M_i², (n, K, K) (or broadcastable)."""
        ...

    def null_intercept(self, y: np.ndarray) -> np.ndarray:
        """The optimal intercepts when W = 0, (K,)."""
        ...

    def dual(self, y: np.ndarray, theta: np.ndarray) -> float:
        """The dual objective at a dual point θ (n, K), for the duality gap."""
        ...

    def gap_scale(self, y: np.ndarray) -> float:
        """The unit of the gap tolerance: the loss of a blind guess."""
        ...


@runtime_checkable
class Penalty(Protocol):
    """λ(α·Ω(W) + (1 − α)/2 ‖W‖²) for a norm Ω on the coefficient matrix W (p × K)."""

    name: str
    group: bool  # True: one block per neuron over its K weights; False: one per coefficient

    def value(self, w: np.ndarray, l1: float, l2: float) -> float: ...
    def dual_norm(self, g: np.ndarray) -> np.ndarray:
        """Per neuron, the dual norm of its gradient row (compared with λα for optimality), (p,)."""
        ...

    def kkt(self, w: np.ndarray, g: np.ndarray, l1: float, l2: float) -> float:
        """The largest distance of −(g + l2·w) to l1·∂Ω(w)."""
        ...


@runtime_checkable
class Design(Protocol):
    """The standardised design Z (n × p), seen only through the products the solver needs.

    Each product is one pass over the rows (counted in `passes`)."""

    passes: int

    @property
    def shape(self) -> tuple[int, int]: ...
    def rmatvec(self, v: np.ndarray) -> np.ndarray:
        """Zᵀ V over every neuron: (p, K) for V (n, K)."""
        ...

    def gram(
        self, cols: np.ndarray, d: np.ndarray, v: np.ndarray, exact: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For the working set `cols` (q neurons), D (n, K, K) and V (n, K): the Hessian block
        Z_Wᵀ diag(D) Z_W (qK × qK), the coupling with the intercepts Z_Wᵀ D (q, K, K), and Z_Wᵀ V (q, K);
        `exact`: in float64 arithmetic even where the design computes in float32. D is a datafit's
        Hessian in the margins, so positive semi-definite: designs may use √D (a negative diagonal
        entry counts as 0)."""
        ...

    def matvec(self, cols: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Z_W U: (n, K) for U (q, K)."""
        ...
