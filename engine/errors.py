"""Errors that reach the user: one line naming the input and the fix."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input or usage. The message names the input and what to do; the CLI exits with code 2."""


class NonFiniteActivationsError(InputError):
    """Activations overflowed (NaN/Inf): every row was written, but the store is not marked complete."""

    def __init__(self, message: str, rows: list[int], count: int) -> None:
        super().__init__(message)
        self.rows = rows
        self.count = count


class SupportWarning(UserWarning):
    """A path could not reach the requested support size; the closest λ is kept. The message names
    the store, so that every store's warning is shown."""
