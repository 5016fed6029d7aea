"""The solver's warnings. `ConvergenceWarning` is scikit-learn's, so filters users already have for
scikit-learn apply to neurosel too; this module imports scikit-learn, and is imported only when a
warning is raised (or by a user who names it)."""

from __future__ import annotations

from sklearn.exceptions import ConvergenceWarning as _SklearnConvergenceWarning


class ConvergenceWarning(_SklearnConvergenceWarning):
    """A λ of the path stopped at its iteration cap before its stopping rule held."""
