"""Read extraction inputs (strings, pairs, tables, datasets) into one validated in-memory corpus."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neurosel.errors import InputError
from neurosel.store import check_labels, describe_rows
from neurosel.store import label_kind as store_label_kind

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

    @property
    def label_kind(self) -> str | None:
        """'class' for class ids, 'numeric' for numeric targets, None without labels (the store's
        meta["label_kind"])."""
        return store_label_kind(self.labels)

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
    label_kind: str = "auto",
) -> Corpus:
    """Turn any supported input into a validated Corpus; raise InputError naming the problem.

    Labels (from `labels`, else from `label_column` when the input has it) follow the rule of
    docs/inputs.md: `label_kind` is "auto", "class" or "numeric"; missing labels are refused.
    """
    lines = None
    if isinstance(inputs, (str, Path)):
        source = str(inputs)
        columns, lines = _read_table(Path(inputs))
    elif _is_columnar(inputs):
        source = type(inputs).__name__
        columns = {name: _column_values(inputs[name]) for name in inputs.column_names}
    elif isinstance(inputs, Mapping):
        source = "mapping"
        columns = {str(k): list(v) for k, v in inputs.items()}
    elif isinstance(inputs, Sequence):
        return _from_sequence(list(inputs), labels, label_kind)
    else:
        raise InputError(
            f"inputs: unsupported type {type(inputs).__name__}; pass a list of strings, a list of "
            "(text, text) pairs, a CSV/TSV/JSONL/Parquet path, or a datasets.Dataset"
        )
    return _from_columns(columns, lines, source, labels, text_column, pair_column, label_column, label_kind)


def _is_columnar(obj: Any) -> bool:
    """Hugging Face datasets.Dataset and pyarrow tables expose column_names and column access."""
    return hasattr(obj, "column_names") and hasattr(obj, "__getitem__") and not isinstance(obj, str)


def _column_values(column: Any) -> list:
    """Python values of a dataset or Arrow column (Arrow columns hold Arrow scalars otherwise)."""
    return column.to_pylist() if hasattr(column, "to_pylist") else list(column)


def _from_sequence(items: list, labels: Sequence | np.ndarray | None, label_kind: str) -> Corpus:
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
    label_array, names = check_labels(labels, len(texts), "labels", label_kind=label_kind)
    return Corpus(texts, pairs, label_array, names, source="list")


def _from_columns(
    columns: dict[str, list],
    lines: list[int] | None,
    source: str,
    labels: Sequence | np.ndarray | None,
    text_column: str,
    pair_column: str | None,
    label_column: str | None,
    label_kind: str,
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
    _check_texts(texts, f"{source} column {text_column!r}", lines)
    pairs = None
    if pair_column is not None:
        pairs = column(pair_column, "--pair-column")
        _check_texts(pairs, f"{source} column {pair_column!r}", lines)
    where, label_lines = "labels", None
    if labels is None and label_column is not None:
        if label_column in columns:
            labels, where, label_lines = columns[label_column], f"{source} column {label_column!r}", lines
        elif label_column != "label":
            column(label_column, "--label-column")
    label_array, names = check_labels(labels, len(texts), where, label_kind=label_kind, lines=label_lines)
    return Corpus(list(texts), pairs and list(pairs), label_array, names, source=source)


def _check_texts(texts: list, where: str, lines: list[int] | None = None) -> None:
    missing = [i for i, text in enumerate(texts) if text is None]
    if missing:
        rows = describe_rows(missing, lines)
        raise InputError(f"{where}: {rows} {_have(missing)} no text; fill or drop {_them(missing)}")
    other = [i for i, text in enumerate(texts) if not isinstance(text, str)]
    if other:
        rows, types = describe_rows(other, lines), ", ".join(sorted({type(texts[i]).__name__ for i in other}))
        raise InputError(f"{where}: {rows} {_is(other)} {types}, not text; fill or drop {_them(other)}")
    empty = [i for i, text in enumerate(texts) if not text.strip()]
    if empty:
        rows = describe_rows(empty, lines)
        raise InputError(
            f"{where}: {rows} {_is(empty)} empty or whitespace only; fill or drop {_them(empty)}"
        )
    broken = [i for i, text in enumerate(texts) if not _encodable(text)]
    if broken:
        rows = describe_rows(broken, lines)
        raise InputError(
            f"{where}: {rows} {_have(broken)} a lone surrogate (half of an escaped character pair, not "
            f"text a tokenizer can read); fix or drop {_them(broken)}"
        )


def _encodable(text: str) -> bool:
    """Text that is valid Unicode: JSON's \\udXXX escapes can leave a lone surrogate in a str."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is(rows: list[int]) -> str:
    return "is" if len(rows) == 1 else "are"


def _have(rows: list[int]) -> str:
    return "has" if len(rows) == 1 else "have"


def _them(rows: list[int]) -> str:
    return "it" if len(rows) == 1 else "them"


def _read_table(path: Path) -> tuple[dict[str, list], list[int] | None]:
    """The file's columns, and the line each row starts on (None for Parquet)."""
    if not path.exists():
        raise InputError(f"{path}: no such file; check the path")
    if path.is_dir() or path.suffix.lower() not in TABLE_SUFFIXES:
        raise InputError(f"{path}: not a table file; pass a .csv, .tsv, .jsonl or .parquet file")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _read_parquet(path), None
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"{path}: cannot be read ({e.strerror}); check its permissions") from None
    text = _decode(data, path)
    if suffix in (".jsonl", ".json"):
        return _parse_jsonl(text, path)
    return _parse_delimited(text, path, "\t" if suffix == ".tsv" else ",")


def _decode(data: bytes, path: Path) -> str:
    """UTF-8 (a byte-order mark is dropped); anything else is refused with the line and byte."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(
            f"{path}: UTF-16 (it starts with a UTF-16 byte-order mark), not UTF-8; re-encode it as "
            f"UTF-8, e.g. iconv -f utf-16 -t utf-8 {path} > utf8{path.suffix}"
        )
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InputError(
            f"{path}: not valid UTF-8 (line {line}, byte {e.start}: 0x{data[e.start]:02x}); re-encode it "
            f"as UTF-8 from its encoding, e.g. iconv -f latin1 -t utf-8 {path} > utf8{path.suffix}"
        ) from None


def _parse_delimited(text: str, path: Path, delimiter: str) -> tuple[dict[str, list], list[int]]:
    """A real CSV parse of the whole text: quoted fields may hold delimiters, quotes ("") and line
    breaks, and be of any size. Blank lines are skipped; each row's line is where its record starts."""
    _lift_field_limit()
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    records = _records(reader, path)
    header = None
    for _, header in records:
        if header:
            break
    if not header:
        raise InputError(f"{path}: the file is empty; pass a file with a header row")
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        names = ", ".join(map(repr, twice))
        raise InputError(f"{path}: column {names} appears more than once in the header; rename one")
    columns: dict[str, list] = {name: [] for name in header}
    lines: list[int] = []
    for line_no, row in records:
        if not row:
            continue
        if len(row) != len(header):
            raise InputError(
                f"{path}: line {line_no} has {len(row)} fields, the header {len(header)}; "
                "quote fields that contain the delimiter"
            )
        for name, value in zip(header, row, strict=True):
            columns[name].append(value)
        lines.append(line_no)
    return columns, lines


def _records(reader: Any, path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line the record starts on, fields) for each record; csv errors become InputErrors."""
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            hint = (
                "a quoted field is never closed; close it, or double the quotes inside it"
                if "unexpected end of data" in str(e)
                else 'quote the field and double the quotes inside it ("")'
            )
            raise InputError(f"{path}: line {start}: malformed CSV ({e}); {hint}") from None
        yield start, row
        start = reader.line_num + 1


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


def _parse_jsonl(text: str, path: Path) -> tuple[dict[str, list], list[int]]:
    rows, lines = [], []
    # Split at \n only: str.splitlines would also split at U+2028 and others, which JSON strings may hold.
    for line_no, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}: line {line_no} is not valid JSON ({e.msg}); fix it") from None
        if not isinstance(row, dict):
            raise InputError(f"{path}: line {line_no} is not a JSON object; one object per line")
        rows.append(row)
        lines.append(line_no)
    names = list(dict.fromkeys(k for row in rows for k in row))
    return {name: [row.get(name) for row in rows] for name in names}, lines


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
