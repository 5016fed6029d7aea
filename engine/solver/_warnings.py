"""The solver's warnings, defined in neurosel.errors with every other user-facing class.
`ConvergenceWarning` is scikit-learn's subclass; importing it here loads scikit-learn."""

from __future__ import annotations

from neurosel.errors import ConvergenceWarning

__all__ = ["ConvergenceWarning"]
