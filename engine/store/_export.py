"""Export a store into the formats other tools read: a Hugging Face dataset, safetensors shards, npy.

SAELens and most training code read Hugging Face `datasets`; delphi and other interpretability tools
read safetensors; numpy reads `.npy` (memory-mapped) with nothing else installed. Each export
streams the activations with the store's checked block reader (`ActivationStore.blocks`: every
block's files are checked against the commit manifest before they are read), so memory stays
within `memory_budget` whatever the store's size; the per-example side arrays (labels, lengths,
texts) are read whole, as every neurosel pass reads them. Everything is written into a hidden
sibling folder of `out` and renamed to `out` at the end: an interrupted export leaves no `out`.

Layouts (docs/export.md):

- `hf`: `datasets.Dataset.save_to_disk` (open with `datasets.load_from_disk(out)`): one row per
  example, `activations` an `Array2D((layers, hidden))` in the stored dtype (float16 and float32
  as stored, bfloat16 decoded to float32: Arrow has no bfloat16), `labels` (ClassLabel with the
  store's label names, else int64 classes or float64 scores), `lengths`, `texts`/`texts_pair` when
  stored; the export metadata as JSON in `info.description`.
- `safetensors`: `activations-0000i-of-0000N.safetensors`, each holding `activations`
  (rows, layers, hidden) in the stored dtype (bfloat16 as real BF16), `labels` and `lengths` of
  its rows; `index.json` with the metadata and each file's row range; `texts.jsonl`. The files
  are written directly in the safetensors layout (an 8-byte header size, a JSON header, the raw
  little-endian bytes), block by block, so a file may be larger than memory and no package is
  needed to write them; `safetensors` reads them.
- `npy`: `activations.npy` (float16/float32 as stored, bfloat16 decoded to float32: numpy has no
  bfloat16), `labels.npy`, `lengths.npy`, `texts.jsonl`, `meta.json`.

Token-pooled stores (pooling "tokens") are refused: their examples have different token counts,
which none of the three layouts holds as one array; `to_xarray` reads them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import struct
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from neurosel.defaults import DEFAULT_MEMORY_BUDGET
from neurosel.errors import InputError
from neurosel.params import Boolean, Integral, Interval, OneOf, PathLike, validated
from neurosel.progress import bar
from neurosel.store._codec import decode
from neurosel.store._location import is_url
from neurosel.store._reader import ActivationStore, open_store
from neurosel.version import __version__

FORMATS = ("hf", "safetensors", "npy")
EXPORT_VERSION = 1
DEFAULT_FILE_BYTES = 1 << 30  # safetensors: rows per file so that a file holds about 1 GiB
_INSTALL = "pip install 'neurosel[export]' (or: pip install datasets)"
# safetensors' dtype names of the arrays written
_SAFETENSORS_DTYPES = {"float16": "F16", "float32": "F32", "bfloat16": "BF16", "int64": "I64"}
_SAFETENSORS_DTYPES.update({"float64": "F64", "int32": "I32", "uint16": "BF16"})

# The options of `export` (neurosel.params), checked before anything is read or written.
EXPORT_PARAMS = {
    "store": PathLike(store=True, fix="pass the store's directory or URL, or an open store"),
    "out": PathLike(fix="pass the folder to create"),
    "to": OneOf(*FORMATS),
    "progress": Boolean(),
    "memory_budget": Interval(Integral, 1, None, fix="pass bytes, e.g. 512 << 20"),
    "max_file_bytes": Interval(Integral, 1, None, fix="pass bytes, e.g. 1 << 30"),
}


@validated(EXPORT_PARAMS)
def export(
    store: str | Path | ActivationStore,
    out: str | Path,
    *,
    to: str = "hf",
    progress: bool = True,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    max_file_bytes: int = DEFAULT_FILE_BYTES,
) -> Path:
    """Write a complete store's activations, labels, lengths and texts as `to` ("hf": a Hugging Face
    dataset for `datasets.load_from_disk`; "safetensors": shards and `index.json`; "npy": memory-mappable
    arrays) into the new folder `out`, and return its path.

    Streamed in blocks of at most `memory_budget` bytes (the store's checked reader), whatever the
    store's size; `max_file_bytes` caps each safetensors file. Refused with one `InputError` line,
    before anything is written: an `out` that exists or is a URL, a missing `datasets` package (for
    "hf"), an incomplete or token-pooled store. float16 and float32 stay as stored; bfloat16 stays
    bfloat16 in safetensors and becomes float32 (exact) in Arrow and numpy, which have no bfloat16.
    """
    out = Path(out) if not isinstance(out, Path) else out
    if is_url(str(out)):
        raise InputError(f"out {out}: export writes a local folder; pass a local path")
    _refuse_existing(out)
    if to == "hf":
        _need_datasets(f"export(to={to!r})")
    source = _exportable(store)
    rows = source.usable_rows(None)
    meta = export_meta(source, rows, to)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = out.parent / f".{out.name}.export-{uuid.uuid4().hex[:12]}"
    work.mkdir()
    try:
        target = work / "out"
        if to == "hf":
            _write_hf(source, rows, meta, work / "cache", target, progress, memory_budget)
        else:
            target.mkdir()
            with bar(rows, f"export {to}", "ex", progress) as shown:
                if to == "npy":
                    _write_npy(source, rows, meta, target, shown, memory_budget)
                else:
                    _write_safetensors(source, rows, meta, target, shown, memory_budget, max_file_bytes)
            _write_texts(source, rows, target)
        _refuse_existing(out)  # made while exporting: keep it, drop ours
        os.rename(target, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def hf_dataset(store: ActivationStore, progress: bool = True) -> Any:
    """The store as a `datasets.Dataset` (the "hf" layout of `export`), written into the `datasets`
    cache and memory-mapped from there; cached by the store's path, attributes and commit manifest,
    so a second call reads nothing and a changed store is exported again."""
    _need_datasets("ActivationStore.to_hf_dataset")
    source = _exportable(store)
    rows = source.usable_rows(None)
    return _hf_build(source, rows, export_meta(source, rows, "hf"), None, progress, DEFAULT_MEMORY_BUDGET)


def export_meta(store: ActivationStore, rows: int, to: str) -> dict[str, Any]:
    """What an export records about its store: model, layers, sizes, pooling, dtypes, labels."""
    meta = store.meta
    stored = str(meta["dtype"])
    values = stored if to == "safetensors" or stored != "bfloat16" else "float32"
    return {
        "format": "neurosel-export",
        "version": EXPORT_VERSION,
        "to": to,
        "source": str(store.path),
        "rows": rows,
        "model_id": meta.get("model_id"),
        "layers": list(store.layers),
        "num_hidden_layers": meta.get("num_hidden_layers"),
        "hidden": store.hidden,
        "pooling": meta["pooling"],
        "dtype": stored,
        "values_dtype": values,
        "precision": meta.get("precision"),
        "max_length": meta.get("max_length"),
        "label_kind": meta.get("label_kind"),
        "label_names": meta.get("label_names"),
        "pairs": bool(meta.get("pairs", False)),
        "weights_hash": meta.get("weights_hash"),
        "inputs_hash": meta.get("inputs_hash"),
        "store_engine_version": meta.get("engine_version"),
        "exported_by": f"neurosel {__version__}",
    }


def _refuse_existing(out: Path) -> None:
    if out.exists() or out.is_symlink():
        raise InputError(f"out {out}: exists; choose another path or delete it")


def _need_datasets(what: str) -> Any:
    try:
        import datasets
    except ImportError:
        raise InputError(f"{what} needs the datasets package, which is not installed: {_INSTALL}") from None
    return datasets


def _exportable(store: str | Path | ActivationStore) -> ActivationStore:
    """The open store, unless it is token-pooled (refused: see the module's docstring)."""
    source = open_store(store)
    if source.meta["pooling"] == "tokens":
        raise InputError(
            f"store {source.path}: token-pooled (pooling 'tokens'), examples of different token counts; "
            "export writes one (layers, hidden) row per example: re-extract with --pooling mean, cls "
            "or max, or read the token rows with ActivationStore.to_xarray()"
        )
    return source


def _side_arrays(store: ActivationStore, rows: int) -> dict[str, np.ndarray]:
    """labels, lengths, texts, texts_pair of the first `rows` examples (those the store holds),
    each read whole and checked against the manifest."""
    found: dict[str, np.ndarray] = {"lengths": np.asarray(store.lengths[:rows], dtype=np.int32)}
    labels = store.labels
    if labels is not None:
        kind = np.float64 if labels.dtype.kind == "f" else np.int64
        found["labels"] = np.asarray(labels[:rows], dtype=kind)
    for name in ("texts", "texts_pair"):
        values = store._side(name)
        if values is not None:
            found[name] = np.asarray(values[:rows], dtype=object)
    return found


def _blocks(store: ActivationStore, rows: int, memory_budget: int) -> Iterator[tuple[int, int, np.ndarray]]:
    """(start, stop, stored values shaped (rows, layers, hidden)) of rows [0, rows), checked."""
    shape = (len(store.layers), store.hidden)
    for block in store.blocks(stop=rows, memory_budget=memory_budget):
        yield block.start, block.stop, np.asarray(block.data).reshape(block.rows, *shape)


# --- Hugging Face datasets ---------------------------------------------------------------------------


def _write_hf(
    store: ActivationStore,
    rows: int,
    meta: dict[str, Any],
    cache: Path,
    target: Path,
    progress: bool,
    memory_budget: int,
) -> None:
    """Build the dataset in a scratch cache under the work folder, then `save_to_disk` it."""
    dataset = _hf_build(store, rows, meta, cache, progress, memory_budget)
    with _datasets_bars_off():
        dataset.save_to_disk(str(target))


def _hf_build(
    store: ActivationStore,
    rows: int,
    meta: dict[str, Any],
    cache: Path | None,
    progress: bool,
    memory_budget: int,
) -> Any:
    """`Dataset.from_generator` over the store's blocks (datasets writes Arrow in batches of
    `writer_batch_size` rows, chosen so a batch holds about a quarter of the budget)."""
    datasets = _need_datasets("export(to='hf')")
    features = _hf_features(store, meta)
    row_bytes = len(store.layers) * store.hidden * np.dtype(meta["values_dtype"]).itemsize
    batch = int(max(1, min(1000, memory_budget // (4 * row_bytes))))
    # the cache key: everything that makes the content (the manifest records every file's crc32)
    digest = hashlib.sha256(json.dumps([store.meta, store.manifest], sort_keys=True, default=str).encode())
    kwargs = {
        "path": str(store.path),
        "rows": rows,
        "memory_budget": memory_budget,
        "progress": progress,
        "content": digest.hexdigest(),
    }
    with _datasets_bars_off():
        dataset = datasets.Dataset.from_generator(
            _hf_examples,
            features=features,
            cache_dir=None if cache is None else str(cache),
            gen_kwargs=kwargs,
            writer_batch_size=batch,
        )
    dataset.info.description = json.dumps(meta)
    return dataset


def _hf_features(store: ActivationStore, meta: dict[str, Any]) -> Any:
    from datasets import Array2D, ClassLabel, Features, Value

    columns: dict[str, Any] = {
        "activations": Array2D(shape=(len(store.layers), store.hidden), dtype=meta["values_dtype"])
    }
    if "labels" in store.group:
        names = meta.get("label_names")
        kind = store.group["labels"].dtype.kind
        columns["labels"] = (
            ClassLabel(names=list(names)) if names else Value("float64" if kind == "f" else "int64")
        )
    columns["lengths"] = Value("int32")
    for name in ("texts", "texts_pair"):
        if name in store.group:
            columns[name] = Value("string")
    return Features(columns)


def _hf_examples(
    path: str, rows: int, memory_budget: int, progress: bool, content: str
) -> Iterator[dict[str, Any]]:
    """The examples of the store at `path`, one dict per row (module level, with plain arguments,
    so that `datasets` can hash it into the cache key; `content` is part of that key only)."""
    store = open_store(path)
    dtype = store.meta["dtype"]
    sides = _side_arrays(store, rows)
    with bar(rows, "export hf", "ex", progress) as shown:
        for start, stop, data in _blocks(store, rows, memory_budget):
            values = decode(data, dtype)
            for i in range(stop - start):
                row = start + i
                example: dict[str, Any] = {"activations": values[i]}
                for name, array in sides.items():
                    example[name] = array[row].item() if array.dtype != object else array[row]
                yield example
            shown.update(stop - start)


@contextlib.contextmanager
def _datasets_bars_off() -> Iterator[None]:
    """datasets' own bars off (export shows one bar of its own), restored afterwards."""
    import datasets

    was_off = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not was_off:
            datasets.enable_progress_bars()


# --- npy ---------------------------------------------------------------------------------------------


def _write_npy(
    store: ActivationStore, rows: int, meta: dict[str, Any], target: Path, shown: Any, memory_budget: int
) -> None:
    """activations.npy filled block by block through a memory map, then the side arrays and meta.json."""
    from numpy.lib.format import open_memmap

    dtype = store.meta["dtype"]
    shape = (rows, len(store.layers), store.hidden)
    values = open_memmap(target / "activations.npy", mode="w+", dtype=meta["values_dtype"], shape=shape)
    for start, stop, data in _blocks(store, rows, memory_budget):
        values[start:stop] = decode(data, dtype)
        shown.update(stop - start)
    values.flush()
    del values
    sides = _side_arrays(store, rows)
    for name in ("labels", "lengths"):
        if name in sides:
            np.save(target / f"{name}.npy", sides[name])
    (target / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")


# --- safetensors -------------------------------------------------------------------------------------


def _write_safetensors(
    store: ActivationStore,
    rows: int,
    meta: dict[str, Any],
    target: Path,
    shown: Any,
    memory_budget: int,
    max_file_bytes: int,
) -> None:
    """Files of at most `max_file_bytes` of activations (at least one row each), each written
    header first and then block by block; `index.json` names each file's rows."""
    width = (len(store.layers), store.hidden)
    row_bytes = int(np.prod(width)) * store.activations.dtype.itemsize
    per_file = max(1, max_file_bytes // row_bytes)
    ranges = [(start, min(start + per_file, rows)) for start in range(0, rows, per_file)]
    names = [f"activations-{i + 1:05d}-of-{len(ranges):05d}.safetensors" for i in range(len(ranges))]
    sides = {k: v for k, v in _side_arrays(store, rows).items() if k in ("labels", "lengths")}
    stored = str(store.meta["dtype"])
    files = iter(zip(names, ranges, strict=True))
    current: tuple[BinaryIO, int, int] | None = None  # (file, its first row, its end row)
    for start, stop, data in _blocks(store, rows, memory_budget):
        at = start
        while at < stop:
            if current is None:
                name, (first, end) = next(files)
                handle = open(target / name, "wb")  # noqa: SIM115 (closed when its rows are written)
                _write_header(handle, stored, (end - first, *width), sides, first, end)
                current = (handle, first, end)
            handle, first, end = current
            upto = min(stop, end)
            part = np.ascontiguousarray(data[at - start : upto - start])
            handle.write(part.astype(part.dtype.newbyteorder("<"), copy=False).tobytes())
            at = upto
            if at == end:
                for values in sides.values():
                    handle.write(values[first:end].astype(values.dtype.newbyteorder("<")).tobytes())
                handle.close()
                current = None
        shown.update(stop - start)
    index = {
        "metadata": meta,
        "shards": [{"file": n, "rows": [a, b]} for n, (a, b) in zip(names, ranges, strict=True)],
    }
    (target / "index.json").write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")


def _write_header(
    handle: BinaryIO,
    stored: str,
    shape: tuple[int, ...],
    sides: dict[str, np.ndarray],
    first: int,
    end: int,
) -> None:
    """The safetensors header: its size (u64, little endian), then JSON naming each tensor's dtype,
    shape and byte range in the data that follows (activations, then labels and lengths),
    padded with spaces to 8 bytes as the safetensors library writes it."""
    size = int(np.prod(shape)) * (4 if stored == "float32" else 2)
    header: dict[str, Any] = {"activations": _entry(stored, shape, 0, size)}
    offset = size
    for name, values in sides.items():
        nbytes = (end - first) * values.dtype.itemsize
        header[name] = _entry(values.dtype.name, (end - first,), offset, offset + nbytes)
        offset += nbytes
    header["__metadata__"] = {"format": "np", "first_row": str(first), "rows": str(end - first)}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    handle.write(struct.pack("<Q", len(text)) + text)


def _entry(dtype: str, shape: tuple[int, ...], begin: int, end: int) -> dict[str, Any]:
    return {"dtype": _SAFETENSORS_DTYPES[dtype], "shape": list(shape), "data_offsets": [begin, end]}


# --- texts -------------------------------------------------------------------------------------------


def _write_texts(store: ActivationStore, rows: int, target: Path) -> None:
    """texts.jsonl, one line per example in row order: {"text": ...} (and "text_pair"), when stored."""
    sides = _side_arrays(store, rows)
    if "texts" not in sides:
        return
    pairs = sides.get("texts_pair")
    with open(target / "texts.jsonl", "w", encoding="utf-8") as handle:
        for row, text in enumerate(sides["texts"]):
            line = {"text": str(text)} if pairs is None else {"text": str(text), "text_pair": str(pairs[row])}
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")
