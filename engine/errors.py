"""Errors and warnings that reach the user, all of them here: one line naming the input and the fix.

This module imports nothing heavy (`ConvergenceWarning` loads scikit-learn on first use only)."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input or usage. The message names the input and what to do; the CLI exits with code 2."""


class NonFiniteActivationsError(InputError):
    """Activations overflowed (NaN/Inf): every row was written, but the store is not marked complete."""

    def __init__(self, message: str, rows: list[int], count: int) -> None:
        super().__init__(message)
        self.rows = rows
        self.count = count


class ReadOnlyStoreWarning(UserWarning):
    """A derived result could not be saved in the store (read-only): it was used from memory."""


class SupportWarning(UserWarning):
    """A path could not reach the requested support size; the closest λ is kept. The message names
    the store, so that every store's warning is shown."""


class StoreLockedError(InputError):
    """Another live process is writing the store."""


class DamagedStoreError(InputError):
    """A file the store's manifest records is missing, empty, truncated or corrupt."""


def __getattr__(name: str) -> type:
    """`ConvergenceWarning`, made on first use: it subclasses scikit-learn's, so that filters users
    already have for scikit-learn apply to neurosel too, and `import neurosel.errors` stays light."""
    if name != "ConvergenceWarning":
        raise AttributeError(f"module 'neurosel.errors' has no attribute {name!r}")
    from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning

    class ConvergenceWarning(SklearnConvergenceWarning):
        """A λ of the path stopped at its iteration cap before its stopping rule held."""

    ConvergenceWarning.__module__, ConvergenceWarning.__qualname__ = __name__, name
    globals()[name] = ConvergenceWarning
    return ConvergenceWarning
