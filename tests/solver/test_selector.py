"""SparseLogisticSelector: scikit-learn's C, a fixed k along the path, and use in a Pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from neurosel import InputError, SparseLogisticSelector

N, P = 300, 30
PLANTED = [4, 9, 21]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, P)) * rng.uniform(0.5, 3, P) + rng.uniform(-2, 2, P)
    z = (x - x.mean(0)) / x.std(0)
    y = (rng.random(N) < 1 / (1 + np.exp(-(z[:, PLANTED] @ [2.0, -1.5, 1.0] + 0.3)))).astype(int)
    return x, y


def objective(x, y, c, w, b):
    m = x @ w + b
    return c * np.sum(np.logaddexp(0, m) - y * m) + np.abs(w).sum()


@pytest.mark.parametrize("c", [0.01, 0.2])
def test_c_has_scikit_learn_meaning(data, c):
    x, y = data
    sel = SparseLogisticSelector(C=c, tol=1e-10).fit(x, y)
    ref = LogisticRegression(l1_ratio=1.0, solver="saga", C=c, tol=1e-12, max_iter=200_000).fit(x, y)
    ours = objective(x, y, c, sel.coef_[0], sel.intercept_[0])
    theirs = objective(x, y, c, ref.coef_[0], ref.intercept_[0])
    assert abs(ours - theirs) <= 1e-6 * theirs
    np.testing.assert_array_equal(sel.get_support(), np.abs(ref.coef_[0]) > 1e-8)
    assert sel.coef_.shape == (1, P) and sel.intercept_.shape == (1,)


def test_k_selects_planted_features_in_a_pipeline(data):
    x, y = data
    pipe = make_pipeline(SparseLogisticSelector(k=3, standardize=True), LogisticRegression()).fit(x, y)
    selector = pipe[0]
    assert set(np.flatnonzero(selector.get_support())) == set(PLANTED)
    assert pipe.predict(x).shape == (N,) and pipe.score(x, y) > 0.7
    assert selector.transform(x).shape == (N, 3)


def test_standardize_reports_coefficients_in_units_of_x(data):
    x, y = data
    sel = SparseLogisticSelector(C=0.05, standardize=True, tol=1e-10).fit(x, y)
    z = (x - x.mean(0)) / x.std(0)
    on_z = SparseLogisticSelector(C=0.05, tol=1e-10).fit(z, y)
    np.testing.assert_allclose(
        x @ sel.coef_[0] + sel.intercept_[0], z @ on_z.coef_[0] + on_z.intercept_[0], atol=1e-8
    )


def test_multiclass_uses_group_penalty():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((450, 12))
    y = np.arange(450) % 3
    x[y == 0, 1] += 2.0
    x[y == 1, 5] += 2.0
    sel = SparseLogisticSelector(k=2).fit(x, y)
    assert set(np.flatnonzero(sel.get_support())) == {1, 5}
    assert sel.coef_.shape == (3, 12) and np.all((sel.coef_ != 0).sum(0) % 3 == 0)  # whole groups


def test_errors(data):
    x, y = data
    with pytest.raises(NotFittedError):
        SparseLogisticSelector().get_support()
    with pytest.raises(InputError, match="only one class"):
        SparseLogisticSelector().fit(x, np.zeros(N))
    with pytest.raises(ValueError, match="k=31"):
        SparseLogisticSelector(k=31).fit(x, y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        SparseLogisticSelector().fit(x, y[:-1])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.SkipTestWarning")  # array-API input: not set up
def test_scikit_learn_estimator_checks_all_pass():
    """scikit-learn's own contract for estimators (fit/transform, cloning, input validation and
    its messages), every check."""
    from sklearn.utils.estimator_checks import check_estimator

    results = check_estimator(SparseLogisticSelector(k=2), on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    assert len(results) > 40 and not failed, failed
