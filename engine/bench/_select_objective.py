"""bench select's "equal objective": every solver's objective recomputed here in float64 from its
coefficients, and its tol tightened until it reaches the engine's within a time budget."""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import numpy as np

from neurosel.bench._select_data import Problem
from neurosel.bench._select_peers import Solver
from neurosel.devices import to_host

MAX_ITER = 1_000_000  # solver iterations per fit when the budget does not cap them
CALIBRATION_ITERS = 4  # extra iterations of the fit that first estimates seconds per iteration
RATE_MIN_ITERS = 10  # fits with fewer iterations do not update that estimate


def objective(problem: Problem, lam: float, w: np.ndarray, b: float) -> float:
    """mean log-loss + λ‖w‖₁ (intercept unpenalised), float64."""
    support = np.flatnonzero(w)
    m = problem.z[:, support] @ w[support] + b
    return float(np.mean(np.logaddexp(0.0, m) - problem.y * m) + lam * np.abs(w).sum())


def coefficients(est: Any) -> tuple[np.ndarray, float]:
    """(w, b) of a fitted binary estimator as float64 numpy."""
    w, b = est.coef_, est.intercept_
    return to_host(w, np.float64).ravel(), float(np.ravel(to_host(b))[0])


def iterations(est: Any) -> int | None:
    """The iterations (epochs for saga) the last fit took, where the estimator reports them."""
    n_iter = getattr(est, "n_iter_", None)
    if n_iter is None:
        return None
    return int(np.max(to_host(n_iter)))


class Budget:
    """Seconds left to one solver on one task, and a max_iter cap that keeps a fit inside them.

    The cap assumes the seconds per iteration of the last fit that ran RATE_MIN_ITERS or more
    (shorter fits are mostly set-up time), or of the calibration fit before any.
    """

    def __init__(self, seconds: float, seconds_per_iter: float | None) -> None:
        self.seconds = seconds
        self.spent = 0.0
        self.per_iter = seconds_per_iter

    @property
    def exhausted(self) -> bool:
        return self.spent >= self.seconds

    def cap(self) -> int:
        """Iterations the next fit may take: what the remaining seconds allow at the current rate."""
        if self.per_iter is None or self.per_iter <= 0:
            return MAX_ITER
        left = self.seconds - self.spent
        return int(min(MAX_ITER, max(1.0, left / self.per_iter)))

    def charge(self, seconds: float, iters: int | None) -> None:
        """Count a fit's seconds; fits long enough to time an iteration update the rate."""
        self.spent += seconds
        if iters and iters >= RATE_MIN_ITERS:
            self.per_iter = seconds / iters


def fit_once(solver: Solver, est: Any) -> tuple[float, int]:
    """Fit, timed; the seconds and the convergence warnings raised."""
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        started = time.perf_counter()
        solver.fit(est)
        seconds = time.perf_counter() - started
    return seconds, len(got)


def calibrate(solver: Solver, problem: Problem, lam: float, tol: float) -> float | None:
    """Seconds per iteration at λ from fits capped at 1 and 1 + CALIBRATION_ITERS iterations.

    The difference leaves out the set-up time of a fit; neither fit counts in any timing.
    """
    runs = []
    for cap in (1, 1 + CALIBRATION_ITERS):
        est = solver.make(lam, tol, cap)
        seconds, _ = fit_once(solver, est)
        runs.append((seconds, iterations(est)))
    (t1, i1), (t2, i2) = runs
    if not i2:
        return None
    if i1 is not None and i2 > i1 and t2 > t1:
        return (t2 - t1) / (i2 - i1)
    return t2 / i2


def fit_lambdas(
    solver: Solver, problem: Problem, lambdas: np.ndarray, tol: float, budget: Budget
) -> list[dict[str, Any]]:
    """One fit per λ in order (warm-started if the solver is), until the λs or the budget run out."""
    fits: list[dict[str, Any]] = []
    est = None
    for lam in lambdas:
        if budget.exhausted:
            break
        cap = budget.cap()
        if est is None or solver.update is None:
            est = solver.make(float(lam), tol, cap)
        else:
            solver.update(est, float(lam), cap)
        seconds, caught = fit_once(solver, est)
        iters = iterations(est)
        budget.charge(seconds, iters)
        w, b = coefficients(est)
        fits.append(
            {
                "seconds": seconds,
                "n_iter": iters,
                "max_iter": cap,
                "capped_by_budget": cap < MAX_ITER and iters is not None and iters >= cap,
                "warnings": caught,
                "objective": objective(problem, float(lam), w, b),
                "support": int(np.count_nonzero(w)),
            }
        )
    return fits


def equal_objective(
    solver: Solver,
    problem: Problem,
    lambdas: np.ndarray,
    reference: np.ndarray,
    tols: list[float],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Tighten the solver's tol until every λ is within rtol of the engine's objective, within the budget."""
    per_iter = calibrate(solver, problem, float(lambdas[-1]), tols[0])
    budget = Budget(args.budget_s, per_iter)
    attempts = []
    for tol in tols:
        if budget.exhausted:
            break
        fits = fit_lambdas(solver, problem, lambdas, tol, budget)
        done = len(fits)
        rel = [float((f["objective"] - r) / abs(r)) for f, r in zip(fits, reference[:done], strict=True)]
        attempt = {
            "tol": tol,
            "seconds": sum(f["seconds"] for f in fits),
            "lambdas_fitted": done,
            "complete": done == len(lambdas),
            "rel_diff": rel,
            "max_rel_diff": max(rel) if rel else None,
            "objective": [f["objective"] for f in fits],
            "support_sizes": [f["support"] for f in fits],
            "n_iter": [f["n_iter"] for f in fits],
            "max_iter": [f["max_iter"] for f in fits],
            "capped_by_budget": any(f["capped_by_budget"] for f in fits),
            "convergence_warnings": sum(f["warnings"] for f in fits),
        }
        attempt["reached"] = bool(attempt["complete"] and max(rel) <= args.rtol)
        attempts.append(attempt)
        if attempt["reached"] or attempt["capped_by_budget"] or not attempt["complete"]:
            break  # reached, or out of budget: a tighter tol cannot get there sooner
    reached = [a for a in attempts if a["reached"]]
    fitted = [a for a in attempts if a["lambdas_fitted"]]
    best = min(fitted, key=lambda a: (not a["complete"], a["max_rel_diff"])) if fitted else None
    out: dict[str, Any] = {
        "status": "reached" if reached else "not reached",
        "seconds": reached[0]["seconds"] if reached else budget.spent,
        "tol": reached[0]["tol"] if reached else None,
        "spent_seconds": budget.spent,
        "budget_seconds": args.budget_s,
        "best_max_rel_diff": best["max_rel_diff"] if best else None,  # over the λs it fitted
        "best_lambdas_fitted": best["lambdas_fitted"] if best else 0,
        "seconds_per_iter_calibration": per_iter,
        "attempts": attempts,
    }
    if reached:
        out["max_rel_diff"] = reached[0]["max_rel_diff"]
        out["support_sizes"] = reached[0]["support_sizes"]
    return out
