"""The sign-fixed solves of one quadratic model share one factorisation (ActiveSolver): every
active set's solution equals a direct solve of its own system, through removals, additions and
refactorisations."""

from __future__ import annotations

import numpy as np
import pytest

from neurosel.solver._newton_l1 import ActiveSolver


def spd(q: int, seed: int) -> np.ndarray:
    """A correlated positive definite matrix, like a Hessian of standardised neurons."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2 * q, 8)) @ rng.standard_normal((8, q)) + rng.standard_normal((2 * q, q))
    return x.T @ x / (2 * q)


def direct(h: np.ndarray, ridge: np.ndarray, active: np.ndarray, b: np.ndarray) -> np.ndarray:
    system = h[np.ix_(active, active)] + np.diag(ridge[active])
    return np.linalg.solve(system, b)


def assert_solves(x: np.ndarray, h: np.ndarray, ridge: np.ndarray, active: np.ndarray, b: np.ndarray) -> None:
    """x equals the direct solve to 1e-8 of its largest entry (entries near zero carry rounding)."""
    want = direct(h, ridge, active, b)
    np.testing.assert_allclose(x, want, rtol=0, atol=1e-8 * np.abs(want).max())


@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_every_active_set_solves_exactly_as_its_own_system(l2):
    q = 700
    h = spd(q, 1)
    ridge = l2 * (np.arange(q) % 5 != 0)  # some neurons unpenalised (no ridge), as intercepts
    rng = np.random.default_rng(2)
    solver = ActiveSolver(h, ridge)
    active = np.sort(rng.choice(q, 400, replace=False))
    factorisations = 0
    for step in range(30):
        b = rng.standard_normal(active.size)
        before = solver.base
        x = solver.solve(active, b)
        factorisations += solver.base is not before
        assert_solves(x, h, ridge, active, b)
        # the next set: one or two neurons leave (a sign crossing), now and then a few enter
        leave = rng.choice(active, 1 + step % 2, replace=False)
        enter = rng.choice(np.setdiff1d(np.arange(q), active), 3 if step % 4 == 0 else 0, replace=False)
        active = np.sort(np.concatenate([np.setdiff1d(active, leave), enter]))
    assert 2 <= factorisations <= 4  # one per ~40 changed neurons (10% of 400), not one per solve


def test_a_neuron_that_leaves_and_comes_back_and_small_sets():
    q = 500
    h = spd(q, 3)
    ridge = np.zeros(q)
    solver = ActiveSolver(h, ridge)
    base = np.arange(0, 480)
    b = np.ones(base.size)
    assert_solves(solver.solve(base, b), h, ridge, base, b)
    without = np.setdiff1d(base, [7, 300])
    assert_solves(solver.solve(without, b[:-2]), h, ridge, without, b[:-2])
    assert solver.base.size == base.size  # solved from the first factorisation
    back = np.union1d(without, [7, 490])  # 7 is in the factorised set again, 490 is new
    assert_solves(solver.solve(back, b[: back.size]), h, ridge, back, b[: back.size])
    small = np.arange(0, 100)  # under ActiveSolver.SMALL: solved directly
    assert_solves(solver.solve(small, b[:100]), h, ridge, small, b[:100])


def test_a_singular_system_falls_back_to_least_squares():
    q = 300
    rng = np.random.default_rng(4)
    x = rng.standard_normal((100, q))  # rank 100 < 300: H is singular
    h = x.T @ x
    active = np.arange(q)
    b = h @ rng.standard_normal(q)  # consistent: a solution exists
    got = ActiveSolver(h, np.zeros(q)).solve(active, b)
    np.testing.assert_allclose(h @ got, b, rtol=1e-6, atol=1e-6 * np.abs(b).max())
