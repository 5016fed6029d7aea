"""The logistic classifier's C search (engine/crossdomain/_classifier.py) against scikit-learn's
LogisticRegressionCV over the whole grid, on the same folds: the same choice, score and model when
the validation curve is unimodal in the sense of the search's stopping rule, the rule's own
choice when it is not."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold

from neurosel.crossdomain import _classifier
from neurosel.crossdomain._classifier import fit

GRID = np.logspace(-4, 2, 7)  # written out, not imported: the reference is the documented recipe
HELD_OUT = 150


def reference(z, y, seed, max_iter=2000):
    return LogisticRegressionCV(
        Cs=GRID, cv=StratifiedKFold(3, shuffle=True, random_state=seed), l1_ratios=(0.0,),
        scoring="accuracy", max_iter=max_iter, use_legacy_attributes=False,
    ).fit(z, y)  # fmt: skip


def rule(sums, patience=2):
    """The documented scan: Cs in increasing order, stop after `patience` consecutive Cs whose summed
    fold accuracy is below the best so far; the smallest C with the best sum. Its index and the
    number of Cs scanned."""
    best, below = 0, 0
    for i in range(1, len(sums)):
        if sums[i] > sums[best]:
            best, below = i, 0
        elif sums[i] < sums[best]:
            below += 1
            if below == patience:
                return best, i + 1
        else:
            below = 0
    return best, len(sums)


def problem(seed, classes, features, sep, strings=False):
    x, y = make_classification(
        600, features, n_informative=min(features, 10), n_redundant=min(features - 10, 5),
        n_classes=classes, class_sep=sep, flip_y=0.05, random_state=seed,
    )  # fmt: skip
    if strings:
        y = np.array(["ant", "bee", "cat"])[y]
    return x[:-HELD_OUT], y[:-HELD_OUT], x[-HELD_OUT:]


CASES = [  # seed, classes, features, class_sep; the best C ranges over 1e-3 … 10, some with ties
    (1, 2, 20, 0.3),
    (2, 2, 20, 0.3),
    (2, 2, 200, 0.3),
    (3, 2, 60, 1.0),
    (7, 2, 200, 1.0),
    (4, 3, 20, 0.3),
    (5, 3, 200, 0.3),
    (6, 3, 20, 0.3),
    (6, 3, 60, 1.0),
]


@pytest.mark.parametrize(("seed", "classes", "features", "sep"), CASES)
def test_the_search_is_logistic_regression_cv_when_the_curve_is_unimodal(seed, classes, features, sep):
    z, y, held = problem(seed, classes, features, sep, strings=classes == 3 and seed % 2 == 0)
    if seed == 7:  # float32 activations, as the transfer step's are: both fit them as float64
        z, held = z.astype(np.float32), held.astype(np.float32)
    ref = reference(z, y, seed)
    curve = ref.scores_[:, 0, :]  # (folds, Cs)
    best, scanned = rule(curve.sum(axis=0))
    assert GRID[best] == ref.C_, "a case chosen to be unimodal in the rule's sense"
    got = fit(z, y, "class", seed)
    model = got.model
    assert model.C_ == ref.C_
    assert got.cv_score == pytest.approx(np.max(curve.mean(axis=0)), abs=1e-12)
    np.testing.assert_array_equal(model.Cs_, GRID[:scanned])
    np.testing.assert_allclose(model.scores_, curve[:, :scanned], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(model.classes_, ref.classes_)
    assert model.coef_.shape == ref.coef_.shape == ((1 if classes == 2 else classes), features)
    assert np.mean(model.predict(held) == ref.predict(held)) >= 0.995
    mine, theirs = model.decision_function(held), ref.decision_function(held)
    assert np.max(np.abs(mine - theirs)) <= 1e-4 * np.max(np.abs(theirs))
    # the same fits from the same starts: the same weights, not just close ones
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(model.intercept_, ref.intercept_, rtol=1e-9, atol=1e-12)
    if classes > 2:  # multinomial, as LogisticRegressionCV's lbfgs fit is
        np.testing.assert_allclose(model.predict_proba(held), ref.predict_proba(held), atol=1e-6)


def test_a_later_peak_past_a_dip_is_not_reached():
    """Near chance the curve wanders: sklearn's whole grid finds a later, higher peak at C = 100;
    the scan stops two Cs below its best and keeps that earlier, smaller C."""
    seed = 0
    z, y, _ = problem(seed, 2, 200, 0.3)
    ref = reference(z, y, seed)
    curve = ref.scores_[:, 0, :]
    best, scanned = rule(curve.sum(axis=0))
    assert (best, scanned) == (0, 3) and GRID[-1] == ref.C_  # not unimodal: the rule and sklearn differ
    got = fit(z, y, "class", seed)
    assert GRID[0] == got.model.C_
    np.testing.assert_allclose(got.model.scores_, curve[:, :scanned], rtol=0, atol=1e-12)
    assert got.cv_score == pytest.approx(curve[:, 0].mean(), abs=1e-12)
    assert got.cv_score < np.max(curve.mean(axis=0))


def test_a_class_missing_from_a_training_fold_falls_back_to_the_whole_grid():
    z, y, _ = problem(3, 3, 20, 1.0)
    y = y.copy()
    y[y == 2] = 1
    y[0] = 2  # one row of class 2: one fold trains without it
    with pytest.warns(UserWarning, match="least populated class"):
        ref = reference(z, y, 3)
    with pytest.warns(UserWarning, match="least populated class"):
        got = fit(z, y, "class", 3)
    assert isinstance(got.model, LogisticRegressionCV) and got.model.C_ == ref.C_
    assert got.cv_score == pytest.approx(np.max(ref.scores_.mean(axis=0)), abs=1e-12)
    np.testing.assert_allclose(got.model.coef_, ref.coef_, rtol=0, atol=1e-10)


def test_convergence_warnings_are_not_swallowed(monkeypatch):
    """A fit that stops at max_iter warns as LogisticRegressionCV's do, once for each such fit; the
    scan makes no more fits than the whole grid does."""
    z, y, _ = problem(1, 2, 60, 1.0)
    monkeypatch.setattr(_classifier, "MAX_ITER", 3)
    with warnings.catch_warnings(record=True) as mine:
        warnings.simplefilter("always")
        got = fit(z, y, "class", 1)
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        reference(z, y, 1, max_iter=3)
    assert {w.category for w in mine} == {w.category for w in theirs} == {ConvergenceWarning}
    assert {str(w.message) for w in mine} == {str(w.message) for w in theirs}
    assert len(mine) == 3 * got.model.Cs_.size + 1 <= len(theirs) == 3 * GRID.size + 1


def test_numeric_labels_still_use_ridge():
    z, _, _ = problem(1, 2, 20, 1.0)
    y = z[:, :3].sum(axis=1) + np.random.default_rng(0).standard_normal(len(z))
    got = fit(z, y, "numeric", 0)
    assert type(got.model).__name__ == "RidgeCV" and got.cv_score == got.model.best_score_
