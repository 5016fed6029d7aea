"""The group-L1 inner kernels (engine/kernels/cd.py) against float64 references computed here: the
block step's minimiser from any first guess of its root, and the block sweeps' model gradients and
minimiser against accelerated proximal gradient (FISTA) on the same quadratic."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from neurosel.kernels.cd import _block_step, block_eigen, block_step, block_violation, group_sweeps
from neurosel.solver._newton_group import _group_solve


def random_block(rng, size):
    """A positive definite block A (one small eigenvalue when size > 1) and its eigenpairs."""
    q = np.linalg.qr(rng.standard_normal((size, size)))[0]
    values = rng.uniform(0.05, 3.0, size)
    values[0] = 1e-3 if size > 1 else values[0]
    return q @ np.diag(values) @ q.T, values, q


@pytest.mark.parametrize("size", [1, 2, 4])
def test_block_step_is_the_block_minimiser_from_any_guess(size):
    """min ½vᵀ(A + l2 I)v − zᵀv + t‖v‖: the subgradient condition (A + l2 I)v − z + t v/‖v‖ = 0 holds
    (zero when ‖z‖ ≤ t), the value is not above scipy's minimiser's, and every first guess of the
    root (0, below it, at it, far past it) gives the same v to rounding."""
    rng = np.random.default_rng(size)
    for _ in range(40):
        a, values, vectors = random_block(rng, size)
        z = rng.standard_normal(size) * rng.uniform(0.1, 3.0)
        t, l2 = rng.uniform(0.0, 1.5) * np.linalg.norm(z), rng.choice([0.0, 0.3])
        out = np.empty(size)
        block_step(z, values, vectors, t, l2, out)
        ridged = a + l2 * np.eye(size)

        def value(v, ridged=ridged, z=z, t=t):
            return 0.5 * v @ ridged @ v - z @ v + t * np.linalg.norm(v)

        if np.linalg.norm(z) <= t:
            assert not out.any()
        else:
            residual = ridged @ out - z + t * out / np.linalg.norm(out)
            scale = np.linalg.norm(z) + np.linalg.norm(ridged, 2) * np.linalg.norm(out)
            assert np.linalg.norm(residual) <= 1e-12 * scale
        start = np.linalg.lstsq(ridged + (t + 1e-3) * np.eye(size), z)[0]
        reference = minimize(value, start, method="Powell")
        assert value(out) <= reference.fun + 1e-10 * max(1.0, abs(reference.fun))
        norm = np.linalg.norm(out)
        for guess in (0.0, 0.5 * norm, norm, 3.0 * norm + 1.0, 1e6):
            again = np.empty(size)
            _block_step(z, values, vectors, t, l2, again, np.empty(size), guess)
            np.testing.assert_allclose(again, out, rtol=1e-10, atol=1e-14)


def group_model(rng, blocks, size, intercept=True):
    """A quadratic model as the Newton steps build it: H = Zᵀ D Z for a random Z, penalty weights one
    per block, the last block unpenalised (the intercepts) when `intercept`."""
    z = rng.standard_normal((3 * blocks * size, blocks * size)) * rng.uniform(0.2, 2.0, blocks * size)
    z[:, size : 2 * size] = z[:, :size] + 0.05 * rng.standard_normal((z.shape[0], size))  # correlated
    h = z.T @ z / z.shape[0]
    grad = rng.standard_normal(blocks * size)
    u0 = rng.standard_normal(blocks * size) * (rng.random(blocks * size) < 0.3)
    pen = np.ones(blocks)
    if intercept:
        pen[-1] = 0.0
    return h, grad, u0, pen


def model_value(h, grad, u, u0, size, pen, l1, l2):
    d = u - u0
    norms = np.linalg.norm(u.reshape(-1, size), axis=1)
    return grad @ d + 0.5 * d @ h @ d + np.sum(pen * (l1 * norms + 0.5 * l2 * norms**2))


def fista_model(h, grad, u0, size, pen, l1, l2, steps=30_000):
    """Accelerated proximal gradient on the same model, in float64 numpy."""
    step = 1.0 / np.linalg.eigvalsh(h)[-1]
    u, prev, mom, t = u0.copy(), u0.copy(), u0.copy(), 1.0
    for _ in range(steps):
        cand = (mom - step * (grad + h @ (mom - u0))).reshape(-1, size)
        norms = np.linalg.norm(cand, axis=1)
        shrink = np.maximum(0.0, 1 - step * l1 * pen / np.maximum(norms, 1e-300)) / (1 + step * l2 * pen)
        u = (cand * shrink[:, None]).ravel()
        t_next = (1 + np.sqrt(1 + 4 * t * t)) / 2
        mom = u + (t - 1) / t_next * (u - prev)
        prev, t = u, t_next
    return u


@pytest.mark.parametrize("size,l2", [(2, 0.0), (2, 0.1), (3, 0.0)])
def test_group_sweeps_keep_the_model_gradient_and_reach_its_minimiser(size, l2):
    """Each sweep's recorded gradient is g + H (u_i − u0) recomputed here; the inner solve (sweeps
    and Anderson steps combining those gradients) stops at its violation tolerance with the model's
    minimum, the value of a long FISTA run on the same model to 1e-9, not above it."""
    rng = np.random.default_rng(7 + size)
    blocks = 30
    h, grad, u0, pen = group_model(rng, blocks, size)
    values, vectors = block_eigen(h, size)
    l1 = 0.5 * np.max(np.linalg.norm(grad.reshape(-1, size), axis=1))
    u, gm = u0.copy(), grad.copy()
    history, gradients = np.empty((6, u.size)), np.empty((6, u.size))
    history[0], gradients[0] = u, gm
    sweeps, violation = group_sweeps(h, gm, u, size, values, vectors, pen, l1, l2, 0.0, history, gradients)
    assert sweeps == 5 and np.isfinite(violation)
    for row, gradient in zip(history, gradients, strict=True):
        np.testing.assert_allclose(gradient, grad + h @ (row - u0), rtol=0, atol=1e-11)
    tol = 1e-10 * l1
    solved = _group_solve(h, grad, u0, size, values, vectors, pen, l1, l2, tol)
    assert block_violation(grad + h @ (solved - u0), solved, size, values, pen, l1, l2) <= tol * (1 + 1e-6)
    ours = model_value(h, grad, solved, u0, size, pen, l1, l2)
    reference = model_value(h, grad, fista_model(h, grad, u0, size, pen, l1, l2), u0, size, pen, l1, l2)
    assert ours <= reference + 1e-12 * abs(reference) and reference - ours <= 1e-9 * abs(reference)
    on = np.linalg.norm(solved.reshape(-1, size), axis=1) > 0
    assert 0 < on[:-1].sum() < blocks - 1  # some blocks at zero, some not: both branches ran
