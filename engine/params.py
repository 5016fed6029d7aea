"""Declarative checks of the public functions' options: one constraint table per function.

A table maps each option's name to a constraint (or a list of them, any of which may hold; `None`
in the list allows None). `check(name, table, arguments)` refuses the first bad value with an
`InputError` of one line, `"<option> <value>: <what is allowed>; <fix>"`, and `@validated(TABLE)`
runs it on a call's bound arguments before the function's body, so that bad input is refused before
any I/O. Choices that come from a registry are read when the check runs (`OneOf(callable)`); the
command line takes its argparse `choices=` from the same tuples (`OneOf.choices`).

Bottom layer: imports nothing of neurosel but `errors` (classes such as ActivationStore or Device
are named, not imported: `Instance("ActivationStore")` matches a class of that name in the value's
MRO).
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
import os
from collections.abc import Mapping
from collections.abc import Sequence as _Sequence
from typing import Any

from neurosel.errors import InputError

__all__ = [
    "Anything",
    "Boolean",
    "Callable",
    "Constraint",
    "Instance",
    "Integral",
    "Interval",
    "OneOf",
    "Optional",
    "PathLike",
    "Real",
    "SequenceOf",
    "check",
    "validated",
]

Integral = numbers.Integral
Real = numbers.Real


class Constraint:
    """What one option accepts. `fix`, when given, is appended to the message after a `;`."""

    fix: str | None = None

    def ok(self, value: Any) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        """What is allowed, as a noun phrase ("a whole number ≥ 1")."""
        raise NotImplementedError

    def rule(self) -> str:
        """The message's text after the value: what is allowed, and the fix."""
        return f"must be {self.describe()}" + (f"; {self.fix}" if self.fix else "")


def _is_bool(value: Any) -> bool:
    kind = type(value)
    return isinstance(value, bool) or (kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_"))


class OneOf(Constraint):
    """One of a finite set. `OneOf("a", "b")`, or `OneOf(callable)` for a registry read at check
    time (a callable returning the current values, e.g. `lambda: METHODS`)."""

    def __init__(self, *values: Any, fix: str | None = None) -> None:
        self._values = values
        self.fix = fix

    @property
    def choices(self) -> tuple[Any, ...]:
        """The allowed values now (argparse's `choices=`)."""
        if len(self._values) == 1 and callable(self._values[0]):
            return tuple(self._values[0]())
        return tuple(self._values)

    def ok(self, value: Any) -> bool:
        return any(
            isinstance(value, type(c)) and _is_bool(value) == _is_bool(c) and value == c for c in self.choices
        )

    def describe(self) -> str:
        return "one of " + ", ".join(map(str, self.choices))

    def rule(self) -> str:
        return "use one of " + ", ".join(map(str, self.choices)) + (f"; {self.fix}" if self.fix else "")


class Interval(Constraint):
    """A number of `kind` (Integral or Real) between `low` and `high` (None: unbounded);
    `closed` is "both", "left", "right" or "neither". Booleans and NaN are refused."""

    def __init__(
        self,
        kind: type,
        low: float | None = None,
        high: float | None = None,
        *,
        closed: str = "both",
        fix: str | None = None,
    ) -> None:
        if closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"closed {closed!r}: use both, left, right or neither")
        self.kind = Integral if kind in (int, Integral) else Real
        self.low, self.high, self.closed, self.fix = low, high, closed, fix

    def ok(self, value: Any) -> bool:
        if _is_bool(value) or not isinstance(value, self.kind):
            return False
        if isinstance(value, Real) and math.isnan(value):
            return False
        left = self.closed in ("both", "left")
        right = self.closed in ("both", "right")
        if self.low is not None and not (value >= self.low if left else value > self.low):
            return False
        return self.high is None or (value <= self.high if right else value < self.high)

    def describe(self) -> str:
        noun = "a whole number" if self.kind is Integral else "a number"
        low, high = self.low, self.high
        left, right = self.closed in ("both", "left"), self.closed in ("both", "right")
        if low is None and high is None:
            return noun
        if high is None:
            return f"{noun} {'≥' if left else '>'} {low:g}"
        if low is None:
            return f"{noun} {'≤' if right else '<'} {high:g}"
        if self.kind is Integral and left and right:
            return f"{noun} in {low:g}..{high:g}"
        return f"{noun} in {'[' if left else '('}{low:g}, {high:g}{']' if right else ')'}"


class Boolean(Constraint):
    """True or False (numpy's bool too)."""

    def __init__(self, fix: str | None = None) -> None:
        self.fix = fix

    def ok(self, value: Any) -> bool:
        return _is_bool(value)

    def describe(self) -> str:
        return "True or False"


class Instance(Constraint):
    """An instance of one of `types`: classes, or class names (matched against the value's MRO, so
    that a higher layer's class can be named without importing it)."""

    def __init__(self, *types: type | str, what: str | None = None, fix: str | None = None) -> None:
        self.types, self.what, self.fix = types, what, fix

    def ok(self, value: Any) -> bool:
        names = {c.__name__ for c in type(value).__mro__}
        for t in self.types:
            if isinstance(t, str):
                if t in names:
                    return True
            elif isinstance(value, t) and not (t in (int, float) and _is_bool(value)):
                return True
        return False

    def describe(self) -> str:
        if self.what:
            return self.what
        names = [t if isinstance(t, str) else t.__name__ for t in self.types]
        return "a " + " or ".join(names)


class Callable(Constraint):
    """A callable."""

    def __init__(self, what: str = "a callable", fix: str | None = None) -> None:
        self.what, self.fix = what, fix

    def ok(self, value: Any) -> bool:
        return callable(value)

    def describe(self) -> str:
        return self.what


class PathLike(Constraint):
    """A path (str or os.PathLike), or, with `store=True`, an ActivationStore (named, not imported)."""

    def __init__(self, store: bool = False, fix: str | None = None) -> None:
        self.store, self.fix = store, fix

    def ok(self, value: Any) -> bool:
        if isinstance(value, (str, os.PathLike)):
            return bool(str(value).strip()) if isinstance(value, str) else True
        return self.store and "ActivationStore" in {c.__name__ for c in type(value).__mro__}

    def describe(self) -> str:
        return "a path (str or os.PathLike)" + (" or an ActivationStore" if self.store else "")


class SequenceOf(Constraint):
    """A list or tuple (not a string) of at least `min_len` items, each satisfying `item`."""

    def __init__(self, item: Any, min_len: int = 0, fix: str | None = None) -> None:
        self.item, self.min_len, self.fix = item, min_len, fix

    def ok(self, value: Any) -> bool:
        array = hasattr(value, "shape") and getattr(value, "ndim", 0) == 1  # a 1-d numpy array
        if isinstance(value, (str, bytes, Mapping)) or not (isinstance(value, _Sequence) or array):
            return False
        items = list(value)
        return len(items) >= self.min_len and all(_satisfied(self.item, v) for v in items)

    def describe(self) -> str:
        each = f", each {_describe(self.item)}"
        least = f" ({self.min_len} or more)" if self.min_len else ""
        return f"a list{least}{each}"


class Anything(Constraint):
    """Any value (an option deliberately left to the function, e.g. a Dask client); documents it."""

    def __init__(self, what: str = "anything") -> None:
        self.what = what

    def ok(self, value: Any) -> bool:
        return True

    def describe(self) -> str:
        return self.what


def Optional(constraint: Any) -> list[Any]:
    """`constraint`, or None."""
    return [*(constraint if isinstance(constraint, list) else [constraint]), None]


def _satisfied(spec: Any, value: Any) -> bool:
    if isinstance(spec, list):
        return any(_satisfied(s, value) for s in spec)
    if spec is None:
        return value is None
    return spec.ok(value)


def _describe(spec: Any) -> str:
    if isinstance(spec, list):
        parts = [_describe(s) for s in spec if s is not None]
        text = " or ".join(parts)
        return f"{text} or None" if None in spec else text
    return "None" if spec is None else spec.describe()


def _rule(spec: Any) -> str:
    if not isinstance(spec, list):
        return spec.rule()
    real = [s for s in spec if s is not None]
    if len(real) == 1:
        fixes = f"; {real[0].fix}" if real[0].fix else ""
        if isinstance(real[0], OneOf):
            return "use one of " + ", ".join(map(str, real[0].choices)) + " or None" + fixes
        return f"must be {_describe(spec)}{fixes}"
    fixes = "; ".join(s.fix for s in real if s.fix)
    return f"must be {_describe(spec)}" + (f"; {fixes}" if fixes else "")


def show(value: Any, limit: int = 60) -> str:
    """A value as one short line: its repr (shortened), or an array's shape and dtype."""
    if hasattr(value, "shape") and hasattr(value, "dtype") and getattr(value, "ndim", 0):
        return f"<array of shape {tuple(value.shape)} and dtype {value.dtype}>"
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def message(name: str, spec: Any, value: Any) -> str:
    """The one-line refusal of `value` for the option `name`."""
    return f"{name} {show(value)}: {_rule(spec)}"


def check(function_name: str, table: Mapping[str, Any], arguments: Mapping[str, Any]) -> None:
    """Check every option of `arguments` that `table` constrains; InputError (one line naming the
    option, what it accepts and the fix) at the first bad one. Options the table does not name are
    left alone (the function checks them; `validated` refuses a table naming unknown options)."""
    for name, value in arguments.items():
        spec = table.get(name, ...)
        if spec is not ... and not _satisfied(spec, value):
            error = InputError(message(name, spec, value))
            error.function = function_name  # type: ignore[attr-defined]
            raise error


def check_options(
    function_name: str, table: Mapping[str, Any], options: Mapping[str, Any] | None, what: str, *, taken=()
) -> dict[str, Any]:
    """Check a dict of options meant for `function_name` (e.g. transfer's `importance_options`): each
    key must be one of the table's options and not in `taken` (options the caller sets itself)."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise InputError(f"{what} {show(options)}: must be a dict of {function_name} options or None")
    allowed = [name for name in table if name not in taken]
    for key in options:
        if key not in allowed:
            raise InputError(
                f"{what}: {key!r} is not an option of {function_name} here; use {', '.join(allowed)}"
            )
    check(function_name, table, options)
    return dict(options)


def validated(table: Mapping[str, Any], *, partial: bool = False):
    """Decorate a function so that its bound arguments are checked against `table` before its body
    runs. The wrapper keeps the function's name, docs, signature (`__wrapped__`) and exposes the
    table as `.params`. A `**kwargs` parameter's items are checked as options of their own names.
    A table may name only the function's parameters, unless `partial` (a function taking some of
    another's options)."""

    def decorate(function):
        signature = inspect.signature(function)
        kinds = {name: p.kind for name, p in signature.parameters.items()}
        var_keyword = next((n for n, k in kinds.items() if k is inspect.Parameter.VAR_KEYWORD), None)
        unknown = [name for name in table if name not in kinds and var_keyword is None and not partial]
        if unknown:
            raise TypeError(f"{function.__qualname__}: the table names unknown parameters {unknown}")
        name = function.__qualname__

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError:
                return function(*args, **kwargs)  # the function's own TypeError
            arguments = dict(bound.arguments)
            if var_keyword is not None:
                arguments.update(arguments.pop(var_keyword, {}))
            check(name, table, arguments)
            return function(*args, **kwargs)

        wrapper.params = table  # type: ignore[attr-defined]
        return wrapper

    return decorate
