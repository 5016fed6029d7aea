"""The scikit-learn recipe ranking, the side-by-side baseline of every single-source transfer."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.svm import l1_min_c

from neurosel.crossdomain._rankings import SKLEARN_CS, SKLEARN_RATIO, sklearn_ranking
from neurosel.solver import rank_by_entry


@pytest.mark.parametrize("classes", [2, 3])
def test_sklearn_recipe_ranking_equals_a_loop_of_liblinear_fits(classes):
    """The recipe ranks exactly as the loop a scikit-learn user writes: one liblinear L1 fit per C
    (one-vs-rest for three classes), neurons by the first C where they enter, and the same again
    when called twice (liblinear's coordinate order comes from a global generator seeded per fit:
    run on threads, the fits interleave its draws, docs/benchmarks.md)."""
    rng = np.random.default_rng(classes)
    z = rng.standard_normal((240, 30))
    y = np.arange(240) % classes
    for c in range(classes):
        z[y == c, 3 * c] += 1.0
        z[y == c, 3 * c + 1] += 0.5
    cs = l1_min_c(z, y, loss="log") * np.geomspace(1.0, SKLEARN_RATIO, SKLEARN_CS)
    weights = []
    for c in cs:
        model = LogisticRegression(solver="liblinear", l1_ratio=1.0, C=c, max_iter=1000, random_state=0)
        fitted = (OneVsRestClassifier(model) if classes > 2 else model).fit(z, y)
        coef = np.vstack([e.coef_ for e in fitted.estimators_]) if classes > 2 else fitted.coef_
        weights.append(np.linalg.norm(coef, axis=0))
    path = np.array(weights)
    entered = path != 0
    want = rank_by_entry(np.where(entered.any(0), entered.argmax(0), -1), path[-1])
    np.testing.assert_array_equal(sklearn_ranking(z, y, "class"), want)
    np.testing.assert_array_equal(sklearn_ranking(z, y, "class"), want)
    planted = {3 * c for c in range(classes)} | {3 * c + 1 for c in range(classes)}
    assert set(want[:classes].tolist()) <= planted
