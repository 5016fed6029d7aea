"""The sparse path solver against scikit-learn at fixed λ, and its certificates and ranking inputs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import ElasticNet, Lasso, LogisticRegression

from neurosel.solver import (
    L1,
    ArrayDesign,
    GroupL1,
    Logistic,
    Multinomial,
    Quadratic,
    example_weights,
    lambda_max,
    sparse_path,
)

N, P = 300, 40


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, P)) * rng.uniform(0.5, 3, P) + rng.uniform(-5, 5, P)
    z = (x - x.mean(0)) / x.std(0)
    w = np.zeros(P)
    w[[3, 11, 25]] = [2.0, -1.5, 1.0]
    y = (rng.random(N) < 1 / (1 + np.exp(-(z @ w + 0.4)))).astype(float)
    target = z @ w + 0.5 * rng.standard_normal(N)
    return x, z, y, target


def log_objective(z, y, c, w, b, l1_ratio=1.0):
    m = z @ w + b
    return c * np.sum(np.logaddexp(0, m) - y * m) + l1_ratio * np.abs(w).sum() + 0.5 * (1 - l1_ratio) * w @ w


@pytest.mark.parametrize("c", [0.02, 0.1, 1.0])
def test_l1_logistic_matches_saga(problem, c):
    _, z, y, _ = problem
    res = sparse_path(ArrayDesign(z), y, Logistic(), lambdas=[1 / (c * N)], tol=1e-10)
    ref = LogisticRegression(l1_ratio=1.0, solver="saga", C=c, tol=1e-12, max_iter=100_000).fit(z, y)
    ours = log_objective(z, y, c, res.coef[0][:, 0], res.intercept[0][0])
    theirs = log_objective(z, y, c, ref.coef_[0], ref.intercept_[0])
    assert abs(ours - theirs) <= 1e-6 * theirs and ours <= theirs * (1 + 1e-9)
    assert np.array_equal(res.coef[0][:, 0] != 0, np.abs(ref.coef_[0]) > 1e-8)
    assert res.converged[0] and res.gaps[0] <= 1e-10 * np.log(2)


def test_l1_logistic_without_intercept_matches_liblinear(problem):
    _, z, y, _ = problem
    c = 0.1
    res = sparse_path(ArrayDesign(z), y, Logistic(), lambdas=[1 / (c * N)], fit_intercept=False, tol=1e-10)
    ref = LogisticRegression(
        l1_ratio=1.0, solver="liblinear", C=c, tol=1e-10, fit_intercept=False, max_iter=100_000
    ).fit(z, y)
    ours, theirs = log_objective(z, y, c, res.coef[0][:, 0], 0.0), log_objective(z, y, c, ref.coef_[0], 0.0)
    assert abs(ours - theirs) <= 1e-6 * theirs
    assert np.array_equal(res.coef[0][:, 0] != 0, np.abs(ref.coef_[0]) > 1e-8)


def test_elastic_net_logistic_matches_saga(problem):
    _, z, y, _ = problem
    c, ratio = 0.1, 0.5
    res = sparse_path(ArrayDesign(z), y, Logistic(), lambdas=[1 / (c * N)], l1_ratio=ratio, tol=1e-10)
    ref = LogisticRegression(l1_ratio=ratio, solver="saga", C=c, tol=1e-12, max_iter=100_000).fit(z, y)
    ours = log_objective(z, y, c, res.coef[0][:, 0], res.intercept[0][0], ratio)
    theirs = log_objective(z, y, c, ref.coef_[0], ref.intercept_[0], ratio)
    assert abs(ours - theirs) <= 1e-6 * theirs


@pytest.mark.parametrize("ratio", [1.0, 0.7])
def test_squared_loss_matches_lasso_and_elastic_net(problem, ratio):
    _, z, _, target = problem
    alpha = 0.05
    res = sparse_path(ArrayDesign(z), target, Quadratic(), lambdas=[alpha], l1_ratio=ratio, tol=1e-12)
    model = Lasso(alpha=alpha) if ratio == 1.0 else ElasticNet(alpha=alpha, l1_ratio=ratio)
    ref = model.set_params(tol=1e-14, max_iter=100_000).fit(z, target)

    def objective(w, b):
        return 0.5 * np.mean((target - z @ w - b) ** 2) + alpha * (
            ratio * np.abs(w).sum() + 0.5 * (1 - ratio) * w @ w
        )

    ours, theirs = objective(res.coef[0][:, 0], res.intercept[0][0]), objective(ref.coef_, ref.intercept_)
    assert abs(ours - theirs) <= 1e-6 * theirs


def test_standardisation_on_the_fly_equals_standardised_data(problem):
    x, z, y, _ = problem
    lam = 0.02
    raw = sparse_path(ArrayDesign(x, x.mean(0), x.std(0)), y, Logistic(), lambdas=[lam], tol=1e-10)
    std = sparse_path(ArrayDesign(z), y, Logistic(), lambdas=[lam], tol=1e-10)
    np.testing.assert_allclose(raw.coef, std.coef, atol=1e-7)


def test_path_enters_planted_neurons_first_and_is_deterministic(problem):
    _, z, y, _ = problem
    design = ArrayDesign(z)
    res = sparse_path(design, y, Logistic(), n_lambdas=20, lambda_ratio=0.05, tol=1e-8)
    assert res.lambdas[0] == pytest.approx(lambda_max(ArrayDesign(z), y, Logistic()))
    assert res.support_sizes[0] == 0 and np.all(np.diff(res.lambdas) < 0)
    first = np.argsort(np.where(res.entry < 0, 99, res.entry), kind="stable")[:3]
    assert set(first) == {3, 11, 25}
    again = sparse_path(ArrayDesign(z), y, Logistic(), n_lambdas=20, lambda_ratio=0.05, tol=1e-8)
    np.testing.assert_array_equal(again.coef, res.coef)
    np.testing.assert_array_equal(again.entry, res.entry)
    assert np.all(res.converged) and np.all(np.diff(res.passes) >= 1)


def test_target_support_stops_the_path(problem):
    _, z, y, _ = problem
    res = sparse_path(ArrayDesign(z), y, Logistic(), n_lambdas=50, lambda_ratio=1e-3, target_support=5)
    assert res.support_sizes[-1] >= 5 and np.all(res.support_sizes[:-1] < 5)


@pytest.fixture(scope="module")
def three_classes():
    rng = np.random.default_rng(3)
    z = rng.standard_normal((N, P))
    w = np.zeros((P, 3))
    w[2], w[7], w[30] = [1.5, -1.0, 0.0], [0.0, 1.2, -1.2], [-0.8, 0.0, 1.0]
    m = z @ w + [0.3, 0.0, -0.2]
    p = np.exp(m - m.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    labels = (rng.random(N)[:, None] > np.cumsum(p, 1)).sum(1)
    return z, labels


def multinomial_objective(z, labels, lam, w, b, group: bool, l1_ratio=1.0):
    """Mean cross-entropy + λ(α‖W‖ + (1−α)/2‖W‖²), computed directly in float64."""
    m = z @ w + b
    ce = np.mean(np.logaddexp.reduce(m, axis=1) - m[np.arange(len(labels)), labels])
    norm = np.linalg.norm(w, axis=1).sum() if group else np.abs(w).sum()
    return ce + lam * (l1_ratio * norm + 0.5 * (1 - l1_ratio) * np.sum(w * w))


@pytest.mark.parametrize("ratio", [1.0, 0.6])
def test_multinomial_l1_matches_saga(three_classes, ratio):
    z, labels = three_classes
    c = 0.05
    datafit = Multinomial()
    res = sparse_path(
        ArrayDesign(z),
        datafit.targets(labels),
        datafit,
        L1(),
        lambdas=[1 / (c * N)],
        l1_ratio=ratio,
        tol=1e-10,
    )
    ref = LogisticRegression(l1_ratio=ratio, solver="saga", C=c, tol=1e-12, max_iter=100_000).fit(z, labels)
    lam = 1 / (c * N)
    ours = multinomial_objective(z, labels, lam, res.coef[0], res.intercept[0], False, ratio)
    theirs = multinomial_objective(z, labels, lam, ref.coef_.T, ref.intercept_, False, ratio)
    assert abs(ours - theirs) <= 1e-6 * theirs and ours <= theirs * (1 + 1e-9)
    assert np.array_equal(res.coef[0] != 0, np.abs(ref.coef_.T) > 1e-8)


def test_multinomial_group_l1_is_optimal(three_classes):
    """Group-L1: the KKT conditions hold (gradient computed here, independently), and a long run of
    plain proximal gradient (FISTA) on the same objective does not do better."""
    z, labels = three_classes
    lam = 0.03
    datafit = Multinomial()
    y = datafit.targets(labels)
    res = sparse_path(ArrayDesign(z), y, datafit, GroupL1(), lambdas=[lam], tol=1e-12)
    w, b = res.coef[0], res.intercept[0]
    m = z @ w + b
    p = np.exp(m - m.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    g = z.T @ (p - y) / N
    norms = np.linalg.norm(w, axis=1)
    on = norms > 0
    assert 0 < on.sum() < P
    np.testing.assert_allclose(g[on], -lam * w[on] / norms[on, None], atol=1e-6)
    assert np.all(np.linalg.norm(g[~on], axis=1) <= lam + 1e-9)
    np.testing.assert_allclose((p - y).sum(0), 0, atol=1e-8)
    assert set(np.flatnonzero(on)) >= {2, 7, 30}
    ours = multinomial_objective(z, labels, lam, w, b, True)
    assert ours <= fista_group(z, y, lam) * (1 + 1e-9)
    assert res.gaps[0] <= 1e-12 * np.log(3)


def fista_group(z, y, lam, steps=20_000):
    """Accelerated proximal gradient for mean cross-entropy + λ Σ‖W_j‖ (intercepts unpenalised)."""
    n, p = z.shape
    k = y.shape[1]
    step = 1.0 / (0.5 * np.linalg.norm(np.c_[z, np.ones(n)], 2) ** 2 / n)
    theta = np.zeros((p + 1, k))
    prev, mom, t = theta.copy(), theta.copy(), 1.0
    za = np.c_[z, np.ones(n)]
    for _ in range(steps):
        m = za @ mom
        q = np.exp(m - m.max(1, keepdims=True))
        q /= q.sum(1, keepdims=True)
        cand = mom - step * za.T @ (q - y) / n
        norms = np.linalg.norm(cand[:p], axis=1, keepdims=True)
        cand[:p] *= np.maximum(0, 1 - step * lam / np.maximum(norms, 1e-300))
        t_next = (1 + np.sqrt(1 + 4 * t * t)) / 2
        mom = cand + (t - 1) / t_next * (cand - prev)
        prev, t = cand, t_next
    labels = y.argmax(1)
    return multinomial_objective(z, labels, lam, prev[:p], prev[p], True)


def group_kkt(z, y, lam, w, b, l1_ratio=1.0, weights=None):
    """Largest violation of the group-L1 (elastic-net) optimality conditions, computed here in
    float64 from the data: ‖g_j + λ(α w_j/‖w_j‖ + (1 − α) w_j)‖ on the support, (‖g_j‖ − λα)₊ off
    it, and the intercepts' gradient."""
    n = len(z)
    s = np.ones(n) if weights is None else weights
    m = z @ w + b
    p = np.exp(m - m.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    residual = s[:, None] * (p - y) / n
    g = z.T @ residual + lam * (1 - l1_ratio) * w
    norms = np.linalg.norm(w, axis=1)
    on = norms > 0
    unit = w[on] / norms[on, None]
    worst = np.linalg.norm(g[on] + lam * l1_ratio * unit, axis=1).max(initial=0.0)
    worst = max(worst, np.maximum(np.linalg.norm(g[~on], axis=1) - lam * l1_ratio, 0).max(initial=0.0))
    return max(worst, np.abs(residual.sum(0)).max())


def edge_case(kind):
    """Three-class data at the inner solver's edge: exact duplicates (many ties), sign-flipped copies,
    or neurons sharing one strong factor (correlation ~0.95), each with planted neurons among them."""
    rng = np.random.default_rng(11)
    n = 240
    base = rng.standard_normal((n, 12))
    if kind == "duplicated":  # every neuron three times over, one of them five times
        z = np.c_[np.repeat(base, 3, axis=1), base[:, [0, 0]]]
    elif kind == "sign-flipped":
        z = np.c_[base, -base, base[:, :4]]
    else:
        factor = rng.standard_normal((n, 1))
        z = np.sqrt(0.95) * factor + np.sqrt(0.05) * rng.standard_normal((n, 36))
    z = (z - z.mean(0)) / z.std(0)
    w = np.zeros((z.shape[1], 3))
    w[0], w[1], w[5] = [1.2, -0.6, -0.6], [-0.5, 1.0, -0.5], [0.3, 0.3, -0.6]
    m = z @ w
    p = np.exp(m - m.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    labels = (rng.random(n)[:, None] > np.cumsum(p, 1)).sum(1)
    return z, labels


@pytest.mark.parametrize("kind", ["duplicated", "sign-flipped", "correlated"])
@pytest.mark.parametrize("fraction", [0.5, 0.05])
def test_group_l1_at_the_inner_solvers_edge(kind, fraction):
    """Group-L1 multinomial on exactly duplicated, sign-flipped and strongly correlated neurons: the
    certified gap is ≤ tol, the optimality conditions hold (checked here from the data), and the
    objective equals that of a long accelerated proximal-gradient run (FISTA) to 1e-6, not above it."""
    z, labels = edge_case(kind)
    datafit = Multinomial()
    y = datafit.targets(labels)
    lam = fraction * lambda_max(ArrayDesign(z), y, datafit, GroupL1())
    tol = 1e-10
    res = sparse_path(ArrayDesign(z), y, datafit, GroupL1(), lambdas=[lam], tol=tol)
    w, b = res.coef[0], res.intercept[0]
    assert res.converged[0] and res.gaps[0] <= tol * np.log(3)
    assert group_kkt(z, y, lam, w, b) <= 1e-6 * lam
    np.testing.assert_allclose(w.sum(1), 0, atol=1e-12)  # rows orthogonal to a common shift
    ours = multinomial_objective(z, labels, lam, w, b, True)
    reference = fista_group(z, y, lam, steps=10_000)
    assert ours <= reference * (1 + 1e-9) and reference - ours <= 1e-6 * reference


@pytest.mark.parametrize("kind", ["duplicated", "correlated"])
def test_group_elastic_net_and_class_weights_at_the_edge(kind):
    z, labels = edge_case(kind)
    weights = np.where(labels == 0, 2.0, 0.7)
    datafit = Multinomial(weights)
    y = datafit.targets(labels)
    lam, ratio = 0.02, 0.6
    res = sparse_path(ArrayDesign(z), y, datafit, GroupL1(), lambdas=[lam], l1_ratio=ratio, tol=1e-9)
    assert res.converged[0] and res.gaps[0] <= 1e-9 * datafit.gap_scale(y)  # the solver's stopping rule
    assert group_kkt(z, y, lam, res.coef[0], res.intercept[0], ratio, weights) <= 2e-9


def test_group_path_kept_hessians_give_the_fresh_hessian_path(monkeypatch):
    """Newton steps on a kept (stale) Hessian change the route, not the solutions: the path with a
    fresh Hessian at every step has the same supports and objectives (1e-9), every λ certified."""
    z, labels = edge_case("correlated")
    datafit = Multinomial()
    y = datafit.targets(labels)
    kept = sparse_path(ArrayDesign(z), y, datafit, GroupL1(), n_lambdas=12, lambda_ratio=0.02, tol=1e-9)
    monkeypatch.setattr("neurosel.solver._newton_group.STALE_RATE", 0.0)
    design = ArrayDesign(z)
    fresh = sparse_path(design, y, datafit, GroupL1(), n_lambdas=12, lambda_ratio=0.02, tol=1e-9)
    assert np.all(kept.converged) and np.all(fresh.converged)
    np.testing.assert_array_equal(kept.support_sizes, fresh.support_sizes)
    np.testing.assert_array_equal(kept.entry, fresh.entry)
    np.testing.assert_allclose(kept.objective, fresh.objective, rtol=1e-9)
    assert kept.passes[-1] < design.passes + fresh.passes[-1]  # cumulative counts of two designs


def test_group_path_without_intercept(three_classes):
    z, labels = three_classes
    datafit = Multinomial()
    y = datafit.targets(labels)
    lam = 0.02
    res = sparse_path(ArrayDesign(z), y, datafit, GroupL1(), lambdas=[lam], fit_intercept=False, tol=1e-10)
    assert res.converged[0] and np.all(res.intercept[0] == 0)
    m = z @ res.coef[0]
    p = np.exp(m - m.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    g = z.T @ (p - y) / N
    on = np.linalg.norm(res.coef[0], axis=1) > 0
    unit = res.coef[0][on] / np.linalg.norm(res.coef[0][on], axis=1, keepdims=True)
    np.testing.assert_allclose(g[on], -lam * unit, atol=1e-7)
    assert np.all(np.linalg.norm(g[~on], axis=1) <= lam + 1e-9)


def test_class_weights_match_sklearn(problem):
    _, z, y, _ = problem
    c = 0.1
    weights = np.where(y == 1, 3.0, 0.5)
    res = sparse_path(ArrayDesign(z), y, Logistic(weights), lambdas=[1 / (c * N)], tol=1e-10)
    ref = LogisticRegression(
        l1_ratio=1.0, solver="saga", C=c, tol=1e-12, max_iter=100_000, class_weight={0: 0.5, 1: 3.0}
    ).fit(z, y)

    def objective(w, b):
        m = z @ w + b
        return c * np.sum(weights * (np.logaddexp(0, m) - y * m)) + np.abs(w).sum()

    ours, theirs = (
        objective(res.coef[0][:, 0], res.intercept[0][0]),
        objective(ref.coef_[0], ref.intercept_[0]),
    )
    assert abs(ours - theirs) <= 1e-6 * theirs
    assert res.gaps[0] <= 1e-10 * np.log(2) * weights.mean()


def test_class_weights_by_id_name_or_balanced():
    labels = np.array([0, 1, 1, 1])
    by_id = example_weights(labels, {1: 3.0})
    np.testing.assert_array_equal(by_id, [1.0, 3.0, 3.0, 3.0])
    np.testing.assert_array_equal(example_weights(labels, {"pos": 3.0}, ["neg", "pos"]), by_id)
    np.testing.assert_allclose(example_weights(labels, "balanced"), [2.0, 2 / 3, 2 / 3, 2 / 3])
    assert example_weights(labels, None) is None
    with pytest.raises(ValueError, match="class_weight"):
        example_weights(labels, {"pos": -1.0}, ["neg", "pos"])


def test_iteration_cap_warns_with_scikit_learns_convergence_warning(problem, monkeypatch):
    from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning

    from neurosel.solver import ConvergenceWarning

    assert issubclass(ConvergenceWarning, SklearnConvergenceWarning)
    _, z, y, _ = problem
    monkeypatch.setattr("neurosel.solver._path.MAX_OUTER", 1)
    with pytest.warns(SklearnConvergenceWarning, match=r"my data: λ=.* stopped at the iteration cap"):
        path = sparse_path(ArrayDesign(z), y, Logistic(), L1(), n_lambdas=3, lambda_ratio=0.1, name="my data")
    assert not path.converged.all()


def test_solver_parts_meet_their_protocols():
    from neurosel.solver import Datafit, Design, Penalty

    assert all(isinstance(d(), Datafit) for d in (Logistic, Multinomial, Quadratic))
    assert all(isinstance(p(), Penalty) for p in (L1, GroupL1))
    assert isinstance(ArrayDesign(np.eye(3)), Design)


def test_blas_threads_in_a_solve_follow_the_size_and_never_a_users_limit(problem, monkeypatch):
    """Inside a real solve (every product asked to run threaded, PARALLEL_FLOPS = 0): the large
    operations get every thread the pools allow, small work one thread, and under a user's
    threadpoolctl limit of 1 nothing is raised; the path is the same either way."""
    import logging

    from threadpoolctl import threadpool_info, threadpool_limits

    from neurosel import devices

    _, z, y, _ = problem
    monkeypatch.setattr(devices, "PARALLEL_FLOPS", 0.0)
    monkeypatch.setattr(devices, "idle_cores", lambda: 64)  # as if every core were idle (shared CI)
    granted: list[int] = []

    class Granted(logging.Handler):  # the limits the solve asks for, as devices.blas_threads logs them
        def emit(self, record):
            if record.getMessage().startswith("BLAS on"):
                granted.append(record.args[0])

    log, hook = logging.getLogger("neurosel"), Granted()
    level = log.level
    log.addHandler(hook)
    log.setLevel(logging.DEBUG)  # (setLevel, not the attribute: it clears the loggers' level caches)

    def solve():
        granted.clear()
        seen = []

        def on_lambda(i, support):  # the λ loop's own setting: one thread
            seen.append({pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"})

        res = sparse_path(ArrayDesign(z), y, Logistic(), n_lambdas=5, on_lambda=on_lambda)
        return res, set(granted), seen

    allowed = devices.blas_allowance()
    try:
        free, asked, seen = solve()
        assert asked == {1, allowed} and all(s == {1} for s in seen)
        with threadpool_limits(limits=1, user_api="blas"):
            limited, asked, seen = solve()
            assert asked == {1} and all(s == {1} for s in seen)
    finally:
        log.removeHandler(hook)
        log.setLevel(level)
    np.testing.assert_allclose(limited.objective, free.objective, rtol=1e-12)


def test_sign_fixed_solves_factorise_in_place_and_fall_back_to_least_squares():
    """The active block gathered as numpy indexes it; the in-place Cholesky solve against numpy's
    solve, and a singular system (the factorisation fails part-way, overwriting half of it) against
    numpy's least squares on the original matrix."""
    from neurosel.kernels.cd import gather_square
    from neurosel.solver._newton_l1 import _solve_spd

    rng = np.random.default_rng(3)
    x = rng.standard_normal((80, 60))
    h = x.T @ x
    idx = np.sort(rng.choice(60, 45, replace=False))
    assert np.array_equal(gather_square(h, idx), h[np.ix_(idx, idx)])
    b = rng.standard_normal(45)
    np.testing.assert_allclose(_solve_spd(gather_square(h, idx), b), np.linalg.solve(h[np.ix_(idx, idx)], b))
    low = rng.standard_normal((12, 45))
    singular = low.T @ low
    b = singular @ rng.standard_normal(45)
    np.testing.assert_allclose(
        _solve_spd(singular.copy(), b), np.linalg.lstsq(singular, b, rcond=None)[0], rtol=1e-8, atol=1e-10
    )


def test_group_path_violator_share_changes_the_route_not_the_solutions(monkeypatch):
    """The group path adds at most VIOLATOR_SHARE × the support in violators per full pass (the L1
    path: as many as the support). On 300 neurons sharing 20 factors, where a λ's first pass finds
    more violators than either cap, both give the same supports, entries and objectives (1e-8), the
    optimality conditions hold at every λ (checked here from the data), and the passes differ."""
    rng = np.random.default_rng(5)
    n, p = 400, 300
    z = rng.standard_normal((n, 20)) @ rng.standard_normal((20, p)) + rng.standard_normal((n, p))
    z = (z - z.mean(0)) / z.std(0)
    w = np.zeros((p, 3))
    w[rng.choice(p, 30, replace=False)] = 0.3 * rng.standard_normal((30, 3))
    m = z @ w
    prob = np.exp(m - m.max(1, keepdims=True))
    prob /= prob.sum(1, keepdims=True)
    labels = (rng.random(n)[:, None] > np.cumsum(prob, 1)).sum(1)
    datafit = Multinomial()
    y = datafit.targets(labels)
    options = {"n_lambdas": 10, "lambda_ratio": 0.01, "tol": 1e-9}
    default = ArrayDesign(z)
    ours = sparse_path(default, y, datafit, GroupL1(), **options)
    monkeypatch.setattr("neurosel.solver._path.VIOLATOR_SHARE", 1.0)
    wide = ArrayDesign(z)
    theirs = sparse_path(wide, y, datafit, GroupL1(), **options)
    assert np.all(ours.converged) and np.all(theirs.converged)
    assert ours.support_sizes[-1] > 4 * 16  # past WS_MIN: the share decides how many violators join
    np.testing.assert_array_equal(ours.support_sizes, theirs.support_sizes)
    np.testing.assert_array_equal(ours.entry, theirs.entry)
    np.testing.assert_allclose(ours.objective, theirs.objective, rtol=1e-8)
    for lam, coef, intercept in zip(ours.lambdas, ours.coef, ours.intercept, strict=True):
        assert group_kkt(z, y, lam, coef, intercept) <= 1e-6 * lam
    assert default.passes != wide.passes
