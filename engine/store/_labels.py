"""What a store's labels may be: class ids (with names) or numeric targets, one per example.

The rule (docs/inputs.md): a label is missing when it is None, NaN (a float, or a string such as
"nan" that reads as one) or an empty or whitespace-only string; missing labels are refused. Strings
that read as numbers ("1", " 2 ", "0.5", cells of a CSV file) are numbers. Booleans are the integers
0 and 1. With `label_kind="auto"`: all integers are class ids as they are; numbers with any
non-integer (a float or a string such as "1.0") are numeric targets; all words are class names,
numbered in sorted order; numbers mixed with words are refused. `label_kind="class"` makes every
label a class name (a number by its string form, "1"); `label_kind="numeric"` makes every label a
float64 target and refuses words.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

from neurosel.errors import InputError

LABEL_KINDS = ("auto", "class", "numeric")
SHOWN = 5  # rows named in a message before "..."
_INT64 = np.iinfo(np.int64)


def label_kind(labels: np.ndarray | None) -> str | None:
    """'class' for integer class ids, 'numeric' for regression targets, None without labels."""
    if labels is None:
        return None
    return "class" if labels.dtype.kind in "iu" else "numeric"


def check_labels(
    labels: Sequence | np.ndarray | None,
    n: int,
    where: str,
    *,
    label_kind: str = "auto",
    lines: Sequence[int] | None = None,
) -> tuple[np.ndarray | None, list[str] | None]:
    """Labels become int64 class ids (with sorted names for class names) or float64 numeric targets.

    `label_kind` is "auto", "class" or "numeric" (the rule is in the module's docstring); `where`
    names the input in messages, and `lines` (the file line each row starts on) adds line numbers.
    Raises InputError naming the rows for missing labels, numbers mixed with words under "auto",
    words under "numeric", non-finite numbers, and values that are neither numbers nor strings.
    """
    kind = label_kind
    if kind not in LABEL_KINDS:
        raise InputError(f"label_kind {kind!r}: unknown; use one of {', '.join(LABEL_KINDS)}")
    if labels is None:
        return None, None
    if isinstance(labels, np.ndarray) and labels.ndim != 1:
        raise InputError(f"{where}: labels of shape {labels.shape}; pass one label per text (1-D)")
    if isinstance(labels, np.ndarray) and labels.dtype.kind in "biuf" and kind != "class":
        if len(labels) != n:
            raise InputError(f"{where}: {len(labels)} labels for {n} texts; pass one label per text")
        return _numeric_array(labels, kind, where, lines), None
    if isinstance(labels, (str, bytes)):
        raise InputError(f"{where}: one string, not a label per text; pass a list of labels")
    try:
        values = list(labels)
    except TypeError:
        raise InputError(
            f"{where}: {type(labels).__name__} is not a sequence; pass one label per text"
        ) from None
    if len(values) != n:
        raise InputError(f"{where}: {len(values)} labels for {n} texts; pass one label per text")
    tags, parsed = zip(*map(_classify, values), strict=True) if values else ((), ())
    _refuse_unusable(values, tags, where, lines)
    if kind == "class":
        return _class_ids([_class_name(v, p) for v, p in zip(values, parsed, strict=True)])
    words = [i for i, t in enumerate(tags) if t == "word"]
    if words and kind == "numeric":
        raise InputError(
            f"{where}: {describe_rows(words, lines)} {_are(words)} not a number "
            f"({_examples(values, words)}); fix {_them(words)}, or pass label_kind='class' "
            "(--label-kind class) for class labels"
        )
    if words and len(words) < len(values):
        others = [i for i, t in enumerate(tags) if t != "word"]
        few, what, many, rest = (words, "word", others, "number")
        if len(words) > len(others):
            few, what, many, rest = (others, "number", words, "word")
        raise InputError(
            f"{where}: labels mix numbers and words: {describe_rows(few, lines)} {_are(few)} "
            f"{_noun(few, what)} "
            f"({_examples(values, few)}), the other {len(many)} {_are(many)} {_noun(many, rest)} "
            f"(e.g. {values[many[0]]!r}); "
            "pass label_kind='class' (--label-kind class) to make every label a class name, "
            "or fix those rows"
        )
    if words:
        return _class_ids(list(values))
    if kind == "auto" and all(t == "int" for t in tags):
        return _int_ids(parsed, where), None
    array = np.array(parsed, dtype=np.float64)
    _refuse_nonfinite(array, where, lines)
    return array, None


def _classify(value: object) -> tuple[str, object]:
    """('missing' | 'int' | 'float' | 'word' | 'other', the parsed number or the value)."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing values
        return "missing", None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return "missing", None
        for kind, parse in (("int", int), ("float", float)):
            try:
                number = parse(text)
            except ValueError:
                continue
            return ("missing", None) if number != number else (kind, number)
        return "word", value
    if isinstance(value, (bool, np.bool_, numbers.Integral)):
        return "int", int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return ("missing", None) if number != number else ("float", number)
    return "other", value


def _refuse_unusable(values: list, tags: tuple[str, ...], where: str, lines: Sequence[int] | None) -> None:
    missing = [i for i, t in enumerate(tags) if t == "missing"]
    if missing:
        raise InputError(
            f"{where}: {describe_rows(missing, lines)} "
            f"{'has no label' if len(missing) == 1 else 'have no label'} "
            "(empty, None or NaN); fill in those labels or drop those rows"
        )
    other = [i for i, t in enumerate(tags) if t == "other"]
    if other:
        types = ", ".join(sorted({type(values[i]).__name__ for i in other}))
        raise InputError(
            f"{where}: {describe_rows(other, lines)} {_are(other)} {types}, not a label; "
            "use numbers or strings"
        )


def _refuse_nonfinite(array: np.ndarray, where: str, lines: Sequence[int] | None) -> None:
    missing = np.flatnonzero(np.isnan(array))
    if missing.size:
        raise InputError(
            f"{where}: {describe_rows(missing, lines)} "
            f"{'has no label' if missing.size == 1 else 'have no label'} "
            "(NaN); fill in those labels or drop those rows"
        )
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise InputError(
            f"{where}: the label of {describe_rows(bad, lines)} is infinite; "
            "use finite numbers or drop those rows"
        )


def _numeric_array(labels: np.ndarray, kind: str, where: str, lines: Sequence[int] | None) -> np.ndarray:
    """A numeric numpy array, fast: integers and booleans are class ids under "auto", floats targets."""
    if labels.dtype.kind in "biu" and kind == "auto":
        if labels.dtype.kind == "u" and labels.size and labels.max() > _INT64.max:
            raise InputError(f"{where}: class ids beyond int64; use smaller ids, or label_kind='class'")
        return labels.astype(np.int64)
    array = labels.astype(np.float64)
    _refuse_nonfinite(array, where, lines)
    return array


def _int_ids(parsed: tuple, where: str) -> np.ndarray:
    if any(not _INT64.min <= v <= _INT64.max for v in parsed):
        raise InputError(f"{where}: class ids beyond int64; use smaller ids, or label_kind='class'")
    return np.array(parsed, dtype=np.int64)


def _class_name(value: object, parsed: object) -> str:
    """A class name: a string as it is, a boolean as False/True, a number by its string form."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(parsed, float) and parsed.is_integer():
        return str(int(parsed))
    return str(parsed)


def _class_ids(names_per_row: list[str]) -> tuple[np.ndarray, list[str]]:
    names = sorted(set(names_per_row))
    index = {name: i for i, name in enumerate(names)}
    return np.array([index[v] for v in names_per_row], dtype=np.int64), names


def describe_rows(rows: Sequence[int] | np.ndarray, lines: Sequence[int] | None = None) -> str:
    """'row 3', 'rows 3, 7' or 'rows 3, 7, 9, 12, 15, ... (12 in all)', with the file lines when known."""
    rows = [int(r) for r in rows]
    shown = rows[:SHOWN]
    text = f"row {shown[0]}" if len(rows) == 1 else f"rows {', '.join(map(str, shown))}"
    notes = []
    if len(rows) > SHOWN:
        text += ", ..."
        notes.append(f"{len(rows)} in all")
    if lines is not None:
        at = ", ".join(str(lines[r]) for r in shown) + (", ..." if len(rows) > SHOWN else "")
        notes.append(f"file line {at}" if len(rows) == 1 else f"file lines {at}")
    return text + (f" ({'; '.join(notes)})" if notes else "")


def _examples(values: list, rows: Sequence[int]) -> str:
    shown = ", ".join(repr(values[i]) for i in rows[:SHOWN])
    return shown + (", ..." if len(rows) > SHOWN else "")


def _are(rows: Sequence[int]) -> str:
    return "is" if len(rows) == 1 else "are"


def _noun(rows: Sequence[int], noun: str) -> str:
    return f"a {noun}" if len(rows) == 1 else f"{noun}s"


def _them(rows: Sequence[int]) -> str:
    return "it" if len(rows) == 1 else "them"
