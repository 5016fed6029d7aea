"""Text to a Zarr activation store: tokenize, batch by token budget, forward, pool, write, resume."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurosel.defaults import LABEL_KINDS, PRECISIONS, SITES
from neurosel.devices import Device, resolve_device
from neurosel.errors import InputError, NonFiniteActivationsError
from neurosel.extraction._cluster import extract_on_cluster, probe_worker_device
from neurosel.extraction._families import DEFAULT_POOLING, HIDDEN, check_site, site_layers, site_module
from neurosel.extraction._inputs import load_corpus
from neurosel.extraction._model import Encoder, load_encoder, resolve_precision
from neurosel.extraction._pooling import POOLINGS
from neurosel.extraction._tokens import Tokenized, tokenize, tokenizer_hash
from neurosel.extraction._windows import SiteTarget, site_width, write_rows
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
    "sites": [OneOf(*SITES), SequenceOf(OneOf(*SITES), min_len=1)],
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
    pooling: str = "auto",
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
    sites: str | Sequence[str] = "hidden",
) -> ActivationStore | dict[str, ActivationStore]:
    """Extract every requested layer's pooled activations for `inputs` into the Zarr store `out`.

    `sites` says which neurons: "hidden" (each layer's hidden state, layer 0 the embeddings) and/or
    "ffn" (each block's FFN intermediate units after the activation function, layers 1 … L). Every
    site comes from the same forward pass and goes to its own store: with several sites `out` must
    hold "{site}" (e.g. "runs/sst2-{site}.zarr") and a dict of stores by site is returned; with one
    site, its store. Pooling "auto" is the family's convention: "mean" for encoders, "last" (the
    last real token) for decoders. Only verified families are read (docs/extraction.md); any other
    `model_type` is refused.

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
    outs = _site_outs(out, sites)  # the options were checked by EXTRACT_PARAMS
    corpus = load_corpus(
        inputs,
        labels=labels,
        text_column=text_column,
        pair_column=pair_column,
        label_column=label_column,
        label_kind=label_kind,
    )
    runner = _runner_for(client, pooling)
    with contextlib.ExitStack() as locks:
        # one writer per store: from before the model loads until completion
        for path in sorted(set(outs.values())):
            locks.enter_context(StoreLock(path))
        encoder, torch_device, spec = _open_encoder(model, device, runner)
        for site in outs:
            check_site(site, encoder.model_type, encoder.model.config, encoder.model_id)
        pooling = DEFAULT_POOLING[encoder.family.kind] if pooling == "auto" else pooling
        precision = resolve_precision(precision, torch_device)
        _check_max_length(max_length, encoder)
        tokens = tokenize(corpus, encoder.tokenizer, max_length)
        site_ids = {site: resolve_layers(layers, encoder.num_layers, site) for site in outs}
        widths = {site: site_width(encoder, tokens, site) for site in outs}
        rows = int(tokens.offsets[-1]) if pooling == "tokens" else len(corpus)
        row_bytes = {s: len(site_ids[s]) * widths[s] * storage_itemsize(dtype) for s in outs}
        layouts = _layouts(rows, row_bytes, chunk_rows)
        arrays = _side_arrays(corpus, tokens.lengths, tokens, pooling, store_texts)
        targets = []
        for site, path in outs.items():
            meta = _store_meta(
                corpus, encoder, tokens, layouts[site], pooling=pooling, layers=site_ids[site], dtype=dtype,
                precision=precision, max_length=max_length, compression=compression, site=site,
                width=widths[site],
            )  # fmt: skip
            group = prepare_store(path, meta, arrays, layouts[site], resume)
            targets.append(SiteTarget(group, dict(group.attrs["neurosel"])))
        _check_free_space(outs, targets, tokens, pooling)
        window_rows = _window_rows(outs, targets)
        if any(t.meta["rows_committed"] < t.meta["n"] for t in targets):
            _run_windows(
                runner, outs, targets, model, encoder, tokens, torch_device, spec, precision, window_rows,
                token_budget, progress,
            )  # fmt: skip
        for path, target in zip(outs.values(), targets, strict=True):
            _finish(path, target.group, target.meta, allow_nonfinite)
    stores = {site: open_store(path) for site, path in outs.items()}
    return stores if len(stores) > 1 else next(iter(stores.values()))


def _site_outs(out: str | Any, sites: str | Sequence[str]) -> dict[str, str]:
    """Each requested site's store path: `out` itself for one site, `out` with "{site}" filled in
    for several (refused without the placeholder: two sites cannot share one store)."""
    wanted = [sites] if isinstance(sites, str) else list(dict.fromkeys(sites))
    out = str(out)
    if len(wanted) > 1 and "{site}" not in out:
        raise InputError(
            f"out {out}: {len(wanted)} sites ({', '.join(wanted)}) need one store each; put '{{site}}' in "
            "the path, e.g. 'runs/sst2-{site}.zarr'"
        )
    return {site: out.replace("{site}", site) for site in wanted}


def _layouts(rows: int, row_bytes: dict[str, int], chunk_rows: int | None) -> dict[str, Layout]:
    """Each site's chunking, sharing one shard size so that one window fills one shard of every
    store: the narrowest shard any site would choose alone, each site's chunk the largest divisor of
    it no larger than the chunk it would choose alone. One site gets exactly its own layout."""
    own = {site: Layout.choose(rows, size, chunk_rows) for site, size in row_bytes.items()}
    shard = min(layout.shard_rows for layout in own.values())
    layouts = {}
    for site, layout in own.items():
        chunk = max(d for d in range(1, min(layout.chunk_rows, shard) + 1) if shard % d == 0)
        layouts[site] = Layout(rows=rows, chunk_rows=chunk, shard_rows=shard)
    return layouts


def _window_rows(outs: dict[str, str], targets: list[SiteTarget]) -> int:
    """The rows of one write window: the shard of every store that still takes rows. Stores resumed
    from runs with other sites can have other shards; a window must fill whole shards of each."""
    pending = {out: t.meta["shard_rows"] for out, t in zip(outs.values(), targets, strict=True)
               if t.meta["rows_committed"] < t.meta["n"]}  # fmt: skip
    if len(set(pending.values())) > 1:
        shown = ", ".join(f"{out}: {rows}" for out, rows in pending.items())
        raise InputError(
            f"out {next(iter(outs.values()))}: the stores to resume were started with other --sites and "
            f"have shards of different rows ({shown}); resume each with the sites it was started "
            "with, or pass --no-resume"
        )
    return next(iter(pending.values()), targets[0].meta["shard_rows"])


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
    corpus: Any, encoder: Encoder, tokens: Tokenized, layout: Layout, **options: Any
) -> dict[str, Any]:
    """A site's store metadata for this configuration (`options`: pooling, layers, dtype, precision,
    max_length, compression, site and its width): what a resumed run must match. `hidden` is the
    site's width (the model's hidden size for "hidden", the FFN's intermediate size for "ffn")."""
    site = options["site"]
    return base_meta(
        model_id=encoder.model_id,
        model_type=encoder.model_type,
        family=encoder.family.kind,
        weights_hash=encoder.weights_hash,
        tokenizer=type(encoder.tokenizer).__name__,
        tokenizer_hash=tokenizer_hash(encoder.tokenizer),
        site=site,
        site_module=site_module(site, encoder.model_type, encoder.model.config),
        pooling=options["pooling"],
        layers=options["layers"],
        num_hidden_layers=encoder.num_layers,
        hidden=options["width"],
        model_hidden=encoder.hidden,
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
    runner: Any,
    outs: dict[str, str],
    targets: list[SiteTarget],
    model: Any,
    encoder: Encoder,
    tokens: Tokenized,
    torch_device: torch.device,
    spec: str | None,
    precision: str,
    window_rows: int,
    token_budget: int | None,
    progress: bool,
) -> None:
    """Write the rows some site has not committed: each window a task on the cluster (`spec` the
    workers' device), or in this process, each window committed when written."""
    if runner.distributed:
        extract_on_cluster(
            runner, list(outs.values()), targets, model, tokens, spec, precision, window_rows, token_budget,
            progress,
        )  # fmt: skip
        return
    first = min(t.meta["rows_committed"] for t in targets)
    bar = ExtractProgress(targets[0].meta["n"], first, progress)
    try:
        write_rows(targets, encoder, tokens, torch_device, precision, window_rows, token_budget, bar=bar)
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


def resolve_layers(layers: str | int | Sequence[int], num_layers: int, site: str = HIDDEN) -> list[int]:
    """The layer ids of `site` that `layers` asks for: 'all' → every one the site has (hidden states
    0 = embeddings … num_layers; block sites 1 … num_layers), 'last' → num_layers; ints may count
    from the end (-1 is the last layer at every site)."""
    available = site_layers(site, num_layers)
    if isinstance(layers, str):
        if layers == "all":
            return available
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
    bad = [x for x in wanted if not (-len(available) <= x < 0 or x in available)]
    if not wanted or bad:
        where = "" if site == HIDDEN else f" at site {site!r}"
        raise InputError(
            f"layers {layers!r}: the model has layers {available[0]}..{num_layers}{where}; pick from those"
        )
    resolved = {available[x] if x < 0 else x for x in wanted}
    return sorted(int(x) for x in resolved)


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


def _check_free_space(
    outs: dict[str, str], targets: list[SiteTarget], tokens: Tokenized, pooling: str
) -> None:
    """Refuse to start work whose output cannot fit, rather than fail hours later (local stores
    with uncompressed shards, whose size is known exactly)."""
    for out, target in zip(outs.values(), targets, strict=True):
        meta = target.meta
        local = local_path(out)
        if local is None or meta["compression"] != "none":
            continue
        row_bytes = len(meta["layers"]) * meta["hidden"] * storage_itemsize(meta["dtype"])
        done, rows = meta["rows_committed"], meta["n"]
        if pooling == "tokens":
            done, rows = int(tokens.offsets[done]), int(tokens.offsets[-1])
        nbytes = (rows - done) * row_bytes
        free = shutil.disk_usage(local).free
        if nbytes > free:
            raise InputError(
                f"out {out}: the activations need {nbytes / 1e6:,.1f} MB, only {free / 1e6:,.1f} MB are "
                "free; free space or pass another --out, then re-run the same command"
            )
