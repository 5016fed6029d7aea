"""Text to a Zarr activation store: tokenize, batch by token budget, forward, pool, write, resume."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurosel.defaults import LABEL_KINDS, PRECISIONS
from neurosel.devices import Device, resolve_device
from neurosel.errors import InputError, NonFiniteActivationsError
from neurosel.extraction._cluster import extract_on_cluster, probe_worker_device
from neurosel.extraction._inputs import load_corpus
from neurosel.extraction._model import load_encoder, resolve_precision
from neurosel.extraction._pooling import POOLINGS
from neurosel.extraction._tokens import Tokenized, tokenize, tokenizer_hash
from neurosel.extraction._windows import write_rows
from neurosel.params import (
    Anything,
    Boolean,
    Instance,
    Integral,
    Interval,
    OneOf,
    Optional,
    PathLike,
    SequenceOf,
    validated,
)
from neurosel.progress import ExtractProgress
from neurosel.scaleout import resolve_runner
from neurosel.store import (
    COMPRESSIONS,
    STORAGE_DTYPES,
    ActivationStore,
    Layout,
    StoreLock,
    base_meta,
    consolidate,
    local_path,
    open_store,
    prepare_store,
    remove_partials,
    storage_itemsize,
)
from neurosel.version import __version__

# The options of `extract`, checked before the inputs are read or anything is written
# (neurosel.params); the command line's choices come from the same tuples (neurosel.defaults).
EXTRACT_PARAMS = {
    "inputs": Anything("texts, a file, a dataset or a DataFrame (docs/inputs.md)"),
    "model": [PathLike(), Instance(tuple, what="a (model, tokenizer) pair")],
    "out": PathLike(),
    "labels": Anything("a sequence or array of labels, or None"),
    "text_column": Instance(str, what="a column name"),
    "pair_column": Optional(Instance(str, what="a column name")),
    "label_column": Optional(Instance(str, what="a column name")),
    "label_kind": OneOf(*LABEL_KINDS),
    "pooling": OneOf(*POOLINGS),
    "layers": [
        Instance(str, what="'all', 'last' or comma-separated layer numbers"),
        Interval(Integral),
        SequenceOf(Interval(Integral), min_len=1),
    ],
    "dtype": OneOf(*STORAGE_DTYPES),
    "precision": OneOf(*PRECISIONS),
    "max_length": Interval(Integral, 2, None),
    "device": Instance(str, "Device", what="a device (auto, cpu, cuda or cuda:N) or a Device"),
    "resume": Boolean(),
    "progress": Boolean(),
    "token_budget": Optional(Interval(Integral, 2, None)),
    "allow_nonfinite": Boolean(),
    "store_texts": Boolean(),
    "chunk_rows": Optional(Interval(Integral, 1, None, fix="None picks the default")),
    "compression": OneOf(*COMPRESSIONS),
    "client": Anything("None, a Dask client or a runner"),
}


@validated(EXTRACT_PARAMS)
def extract(
    inputs: Any,
    model: str | Path | tuple[Any, Any],
    out: str | Path,
    *,
    labels: Sequence | np.ndarray | None = None,
    text_column: str = "text",
    pair_column: str | None = None,
    label_column: str | None = "label",
    label_kind: str = "auto",
    pooling: str = "mean",
    layers: str | int | Sequence[int] = "all",
    dtype: str = "float16",
    precision: str = "auto",
    max_length: int = 128,
    device: str | Device = "auto",
    resume: bool = True,
    progress: bool = True,
    token_budget: int | None = None,
    allow_nonfinite: bool = False,
    store_texts: bool = True,
    chunk_rows: int | None = None,
    compression: str = "none",
    client: Any = None,
) -> ActivationStore:
    """Extract every requested layer's pooled activations for `inputs` into the Zarr store `out`.

    Re-running a complete extraction is a no-op; an interrupted one resumes at its first uncommitted
    window; a store of another configuration at `out` is refused. Non-finite activations (fp16
    overflow) are written, counted and reported by raising NonFiniteActivationsError, leaving the
    store incomplete unless `allow_nonfinite` (a re-run with it set only marks the store complete).
    Labels follow docs/inputs.md: `label_kind` "auto" (integers are class ids, other numbers numeric
    targets, words class names; numbers mixed with words are refused), "class" or "numeric";
    missing labels (empty, None, NaN) are refused. Every option is checked before anything is written.

    With `client` (a dask.distributed Client, or a runner from `neurosel.scaleout.resolve_runner`)
    each window of rows is a task on the cluster: every worker loads the model once, runs on its own
    device and writes its own shards; this process tokenises, commits in row order and shows
    progress (neurosel.extraction._cluster, docs/scale-out.md). The store has the bytes of a
    single-process run on the workers' device type.
    """
    out = str(out)  # the options were checked by EXTRACT_PARAMS
    corpus = load_corpus(
        inputs,
        labels=labels,
        text_column=text_column,
        pair_column=pair_column,
        label_column=label_column,
        label_kind=label_kind,
    )
    runner = _runner_for(client, pooling)
    with StoreLock(out):  # one writer at a time: before the model loads, until completion
        encoder, torch_device, spec = _open_encoder(model, device, runner)
        precision = resolve_precision(precision, torch_device)
        layer_ids = resolve_layers(layers, encoder.num_layers)
        _check_max_length(max_length, encoder)
        tokens = tokenize(corpus, encoder.tokenizer, max_length)
        row_bytes = len(layer_ids) * encoder.hidden * storage_itemsize(dtype)
        rows = int(tokens.offsets[-1]) if pooling == "tokens" else len(corpus)
        layout = Layout.choose(rows, row_bytes, chunk_rows)
        meta = _store_meta(
            corpus, encoder, tokens, layout, pooling=pooling, layers=layer_ids, dtype=dtype,
            precision=precision, max_length=max_length, compression=compression,
        )  # fmt: skip
        arrays = _side_arrays(corpus, tokens.lengths, tokens, pooling, store_texts)
        group = prepare_store(out, meta, arrays, layout, resume)
        meta = dict(group.attrs["neurosel"])
        if meta["compression"] == "none":  # uncompressed shards: the size is known exactly
            done = meta["rows_committed"]
            done = int(tokens.offsets[done]) if pooling == "tokens" else done
            _check_free_space(out, (rows - done) * row_bytes)
        if meta["rows_committed"] < meta["n"]:
            _run_windows(
                runner, out, group, meta, model, encoder, tokens, torch_device, spec, precision, layout,
                token_budget, progress,
            )  # fmt: skip
        _finish(out, group, meta, allow_nonfinite)
    return open_store(out)


def _runner_for(client: Any, pooling: str) -> Any:
    """The runner of `client`; token pooling is refused on a cluster."""
    runner = resolve_runner(client)
    if runner.distributed and pooling == "tokens":
        raise InputError(
            "pooling 'tokens' with a Dask client: token rows do not split at shard boundaries per "
            "example; extract token stores in one process (without client= / --workers)"
        )
    return runner


def _check_max_length(max_length: int, encoder: Any) -> None:
    if max_length > encoder.max_positions:
        raise InputError(
            f"max_length {max_length}: the model has {encoder.max_positions} positions; "
            f"use --max-length {encoder.max_positions} or less"
        )


def _open_encoder(model: Any, device: str | Device, runner: Any) -> tuple[Any, torch.device, Any]:
    """The encoder, the device type that sets precision and batches, and the workers' device spec
    (None in process). On a cluster the workers' device type counts: the model loaded here, on the
    CPU, only gives the metadata."""
    if not runner.distributed:
        torch_device = resolve_device(device).for_stage("extract").torch
        return load_encoder(model, torch_device), torch_device, None
    spec = runner.placed(device)  # each worker resolves it for itself: its own GPU
    torch_device = torch.device(probe_worker_device(runner, spec))
    return load_encoder(model, torch.device("cpu")), torch_device, spec


def _store_meta(
    corpus: Any, encoder: Any, tokens: Tokenized, layout: Layout, **options: Any
) -> dict[str, Any]:
    """The store's metadata for this configuration (`options`: pooling, layers, dtype, precision,
    max_length, compression): what a resumed run must match."""
    return base_meta(
        model_id=encoder.model_id,
        weights_hash=encoder.weights_hash,
        tokenizer=type(encoder.tokenizer).__name__,
        tokenizer_hash=tokenizer_hash(encoder.tokenizer),
        pooling=options["pooling"],
        layers=options["layers"],
        num_hidden_layers=encoder.num_layers,
        hidden=encoder.hidden,
        dtype=options["dtype"],
        precision=options["precision"],
        max_length=options["max_length"],
        inputs_hash=corpus.digest(),
        n=len(corpus),
        n_tokens=int(tokens.offsets[-1]),
        pairs=corpus.pairs is not None,
        label_kind=corpus.label_kind,
        label_names=corpus.label_names,
        chunk_rows=layout.chunk_rows,
        shard_rows=layout.shard_rows,
        compression=options["compression"],
        engine_version=__version__,
    )


def _run_windows(
    runner,
    out,
    group,
    meta,
    model,
    encoder,
    tokens,
    torch_device,
    spec,
    precision,
    layout,
    token_budget,
    progress,
) -> None:
    """Write the rows not yet committed: each window a task on the cluster (`spec` the workers'
    device), or in this process, each window committed when written."""
    if runner.distributed:
        extract_on_cluster(
            runner, out, group, meta, model, tokens, spec, precision, layout, token_budget, progress
        )
        return
    bar = ExtractProgress(meta["n"], meta["rows_committed"], progress)
    try:
        write_rows(group, meta, encoder, tokens, torch_device, precision, layout, token_budget, bar=bar)
    finally:
        bar.close()


def _finish(out: str, group: Any, meta: dict[str, Any], allow_nonfinite: bool) -> None:
    """Raise on non-finite activations (unless allowed), else mark the store complete. Every write
    is over (this process holds the lock), so temporary files of writers killed mid-write go first."""
    remove_partials(out)
    if meta["nonfinite_values"] and not allow_nonfinite:
        raise _nonfinite_error(out, meta)
    if not meta["complete"]:
        meta["complete"] = True
        group.attrs["neurosel"] = meta
        consolidate(out)  # foreign readers (xarray) see the finished hierarchy


def _nonfinite_error(out: str, meta: dict[str, Any]) -> NonFiniteActivationsError:
    rows = meta["nonfinite_rows"]
    shown = ", ".join(map(str, rows[:10])) + (", ..." if meta["nonfinite_row_count"] > 10 else "")
    return NonFiniteActivationsError(
        f"out {out}: {meta['nonfinite_values']} non-finite activation values in "
        f"{meta['nonfinite_row_count']} rows (rows {shown}); likely float16 overflow: extract again "
        "with --dtype float32 or bfloat16 into a new --out, or re-run with --allow-nonfinite to keep them",
        rows=list(rows),
        count=int(meta["nonfinite_values"]),
    )


def resolve_layers(layers: str | int | Sequence[int], num_layers: int) -> list[int]:
    """'all' → every hidden state (0 = embeddings … num_layers); ints may count from the end."""
    total = num_layers + 1
    if isinstance(layers, str):
        if layers == "all":
            return list(range(total))
        if layers == "last":
            return [num_layers]
        try:
            wanted = [int(x) for x in layers.split(",") if x.strip()]
        except ValueError:
            raise InputError(
                f"layers {layers!r}: use 'all', 'last' or comma-separated layer numbers"
            ) from None
    else:
        wanted = [layers] if isinstance(layers, (int, np.integer)) else list(layers)
    bad = [x for x in wanted if not -total <= x < total]
    if not wanted or bad:
        raise InputError(f"layers {layers!r}: the model has layers 0..{num_layers}; pick from those")
    resolved = sorted({x % total for x in wanted})
    return [int(x) for x in resolved]


def _side_arrays(
    corpus: Any, lengths: np.ndarray, tokens: Tokenized, pooling: str, store_texts: bool
) -> dict[str, np.ndarray]:
    """Per-example arrays written once at creation: lengths, labels, texts, token offsets."""
    arrays = {"lengths": lengths}
    if corpus.labels is not None:
        arrays["labels"] = corpus.labels
    if pooling == "tokens":
        arrays["offsets"] = tokens.offsets
    if store_texts:
        arrays["texts"] = np.array(corpus.texts, dtype=object)
        if corpus.pairs is not None:
            arrays["texts_pair"] = np.array(corpus.pairs, dtype=object)
    return arrays


def _check_free_space(out: str, nbytes: int) -> None:
    """Refuse to start work whose output cannot fit, rather than fail hours later (local stores)."""
    local = local_path(out)
    if local is None:
        return
    free = shutil.disk_usage(local).free
    if nbytes > free:
        raise InputError(
            f"out {out}: the activations need {nbytes / 1e6:,.1f} MB, only {free / 1e6:,.1f} MB are "
            "free; free space or pass another --out, then re-run the same command"
        )
