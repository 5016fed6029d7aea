"""Independent float64 references for per-neuron statistics: numpy, scipy.stats, scikit-learn."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.stats as ss
from sklearn.metrics import roc_auc_score

# The CPU moments kernel sums 16-bit values in float32 over groups of 64 rows, then in float64
# (neurosel.kernels.moments; docs/statistics.md; docs/api.md, "Precision"): statistics of 16-bit
# stores agree with float64 numpy, and with any other split of the rows, to this relative error
# (means: of the standard deviation too), far below the values' own resolution (float16 5e-4,
# bfloat16 4e-3).
RTOL16 = 2e-6


def hard_columns(rng: np.random.Generator, n: int, features: int, offset: float) -> np.ndarray:
    """Columns that break naive code: ties, outliers, a large offset, constant, class-constant."""
    x = rng.standard_normal((n, features))
    x[:, 0::6] = np.round(x[:, 0::6] * 2) / 2  # heavy ties
    x[rng.integers(0, n, 3), 1::6] = 60.0  # outliers
    x[:, 2::6] += offset  # catastrophic cancellation for one-pass sums of squares
    x[:, 3] = 1.25  # constant column
    return x


def reference(x: np.ndarray, y: np.ndarray | None) -> dict[str, np.ndarray]:
    """Statistics of each column of x (non-finite values left out), by class when y is given."""
    with warnings.catch_warnings():  # scipy warns on the constant columns it is given on purpose
        warnings.simplefilter("ignore", RuntimeWarning)
        return _reference(x, y)


def _reference(x: np.ndarray, y: np.ndarray | None) -> dict[str, np.ndarray]:
    finite = np.isfinite(x)
    masked = np.where(finite, x, np.nan)
    out = {
        "count": finite.sum(0),
        "mean": np.nanmean(masked, 0),
        "var": np.nanvar(masked, 0, ddof=1),
        "min": np.nanmin(masked, 0),
        "max": np.nanmax(masked, 0),
        "nonfinite": (~finite).sum(0),
    }
    if y is None:
        return out
    classes = np.unique(y)
    groups = [masked[y == c] for c in classes]
    out["class_mean"] = np.stack([np.nanmean(g, 0) for g in groups])
    out["class_var"] = np.stack([np.nanvar(g, 0, ddof=1) for g in groups])
    out["anova_f"] = ss.f_oneway(*groups, nan_policy="omit").statistic
    out["probeless"] = sum(
        np.abs(out["class_mean"][i] - out["class_mean"][j])
        for i in range(len(classes))
        for j in range(i + 1, len(classes))
    )
    if len(classes) == 2:
        out["t"] = ss.ttest_ind(groups[1], groups[0], equal_var=False, nan_policy="omit").statistic
        out["auroc"] = np.array(
            [roc_auc_score(y[finite[:, f]] == classes[1], x[finite[:, f], f]) for f in range(x.shape[1])]
        )
    return out
