"""Read extraction inputs (strings, pairs, tables, datasets) into one validated in-memory corpus."""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import InputError
from engine.store import check_labels

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")


@dataclass(frozen=True)
class Corpus:
    """Texts (and optional second texts of pairs) with optional labels, in input order."""

    texts: list[str]
    pairs: list[str] | None
    labels: np.ndarray | None
    label_names: list[str] | None
    source: str

    def __len__(self) -> int:
        return len(self.texts)

    def digest(self) -> str:
        """A hash of everything that determines the stored activations' rows and labels."""
        h = hashlib.sha256()
        for column in (self.texts, self.pairs or []):
            for text in column:
                data = text.encode("utf-8")
                h.update(len(data).to_bytes(8, "little"))
                h.update(data)
            h.update(b"\x00column")
        if self.labels is not None:
            h.update(str(self.labels.dtype).encode())
            h.update(np.ascontiguousarray(self.labels).tobytes())
        return h.hexdigest()


def load_corpus(
    inputs: Any,
    *,
    labels: Sequence | np.ndarray | None = None,
    text_column: str = "text",
    pair_column: str | None = None,
    label_column: str | None = "label",
) -> Corpus:
    """Turn any supported input into a validated Corpus; raise InputError naming the problem."""
    if isinstance(inputs, (str, Path)):
        source = str(inputs)
        columns = _read_table(Path(inputs))
    elif _is_columnar(inputs):
        source = type(inputs).__name__
        columns = {name: _column_values(inputs[name]) for name in inputs.column_names}
    elif isinstance(inputs, Mapping):
        source = "mapping"
        columns = {str(k): list(v) for k, v in inputs.items()}
    elif isinstance(inputs, Sequence):
        return _from_sequence(list(inputs), labels)
    else:
        raise InputError(
            f"inputs: unsupported type {type(inputs).__name__}; pass a list of strings, a list of "
            "(text, text) pairs, a CSV/TSV/JSONL/Parquet path, or a datasets.Dataset"
        )
    return _from_columns(columns, source, labels, text_column, pair_column, label_column)


def _is_columnar(obj: Any) -> bool:
    """Hugging Face datasets.Dataset and pyarrow tables expose column_names and column access."""
    return hasattr(obj, "column_names") and hasattr(obj, "__getitem__") and not isinstance(obj, str)


def _column_values(column: Any) -> list:
    """Python values of a dataset or Arrow column (Arrow columns hold Arrow scalars otherwise)."""
    return column.to_pylist() if hasattr(column, "to_pylist") else list(column)


def _from_sequence(items: list, labels: Sequence | np.ndarray | None) -> Corpus:
    if not items:
        raise InputError("inputs: the list is empty; pass at least one text")
    if all(isinstance(x, str) for x in items):
        texts, pairs = items, None
    elif all(isinstance(x, (tuple, list)) and len(x) == 2 for x in items):
        texts, pairs = [x[0] for x in items], [x[1] for x in items]
    else:
        raise InputError("inputs: mix of types in the list; pass all strings, or all (text, text) pairs")
    _check_texts(texts, "inputs")
    if pairs is not None:
        _check_texts(pairs, "inputs (second text of the pair)")
    label_array, names = check_labels(labels, len(texts), "labels")
    return Corpus(texts, pairs, label_array, names, source="list")


def _from_columns(
    columns: dict[str, list],
    source: str,
    labels: Sequence | np.ndarray | None,
    text_column: str,
    pair_column: str | None,
    label_column: str | None,
) -> Corpus:
    def column(name: str, option: str) -> list:
        if name not in columns:
            raise InputError(
                f"{source}: no column {name!r} (columns: {', '.join(columns) or 'none'}); "
                f"pass {option} with one of them"
            )
        return columns[name]

    texts = column(text_column, "--text-column")
    if not texts:
        raise InputError(f"{source}: no rows; pass a file with at least one text")
    _check_texts(texts, f"{source} column {text_column!r}")
    pairs = None
    if pair_column is not None:
        pairs = column(pair_column, "--pair-column")
        _check_texts(pairs, f"{source} column {pair_column!r}")
    if labels is None and label_column is not None:
        if label_column in columns:
            labels = columns[label_column]
        elif label_column != "label":
            column(label_column, "--label-column")
    label_array, names = check_labels(labels, len(texts), f"{source} labels")
    return Corpus(list(texts), pairs and list(pairs), label_array, names, source=source)


def _check_texts(texts: list, where: str) -> None:
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError(f"{where}: row {i} is {type(text).__name__}, not text; fill or drop it")
        if not text.strip():
            raise InputError(f"{where}: row {i} is empty or whitespace only; fill or drop it")


def _read_table(path: Path) -> dict[str, list]:
    if not path.exists():
        raise InputError(f"{path}: no such file; check the path")
    if path.is_dir() or path.suffix.lower() not in TABLE_SUFFIXES:
        raise InputError(f"{path}: not a table file; pass a .csv, .tsv, .jsonl or .parquet file")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _read_parquet(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        line = path.read_bytes()[: e.start].count(b"\n") + 1
        raise InputError(
            f"{path}: not valid UTF-8 (line {line}, byte {e.start}); re-encode it as UTF-8, "
            f"e.g. iconv -f latin1 -t utf-8"
        ) from None
    except OSError as e:
        raise InputError(f"{path}: cannot be read ({e.strerror}); check its permissions") from None
    text = text.removeprefix("\ufeff")
    if suffix in (".jsonl", ".json"):
        return _parse_jsonl(text, path)
    return _parse_delimited(text, path, "\t" if suffix == ".tsv" else ",")


def _parse_delimited(text: str, path: Path, delimiter: str) -> dict[str, list]:
    _lift_field_limit()
    reader = csv.reader(text.splitlines(), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(f"{path}: the file is empty; pass a file with a header row") from None
    columns: dict[str, list] = {name: [] for name in header}
    for line_no, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise InputError(
                f"{path}: line {line_no} has {len(row)} fields, the header {len(header)}; "
                "quote fields that contain the delimiter"
            )
        for name, value in zip(header, row, strict=True):
            columns[name].append(value)
    return columns


def _lift_field_limit() -> None:
    """Read fields of any length: the csv module refuses fields over 128 KiB by default, and a long
    document is a valid text (it is truncated to max_length tokens later)."""
    limit = sys.maxsize
    while limit > csv.field_size_limit():
        try:
            csv.field_size_limit(limit)
            return
        except OverflowError:  # a C long narrower than sys.maxsize (Windows)
            limit //= 2


def _parse_jsonl(text: str, path: Path) -> dict[str, list]:
    rows = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}: line {line_no} is not valid JSON ({e.msg}); fix it") from None
        if not isinstance(row, dict):
            raise InputError(f"{path}: line {line_no} is not a JSON object; one object per line")
        rows.append(row)
    names = list(dict.fromkeys(k for row in rows for k in row))
    return {name: [row.get(name) for row in rows] for name in names}


def _read_parquet(path: Path) -> dict[str, list]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(f"{path}: reading Parquet needs pyarrow; pip install pyarrow") from None
    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types for corrupt files
        raise InputError(f"{path}: not a readable Parquet file ({e}); check the file") from None
    return {name: table.column(name).to_pylist() for name in table.column_names}
