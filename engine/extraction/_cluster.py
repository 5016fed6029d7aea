"""Extraction on a Dask cluster: one task per window (one shard of rows), the client commits.

The client tokenises the corpus once, creates the store and sends each task only its rows' tokens.
A worker loads the encoder once (cached for later tasks), runs the same window loop as a single
process on its own device (`write_rows`), writes the window's shards straight to the store and
returns their manifest entries. The client commits windows strictly in row order, so
`rows_committed` only ever covers rows whose shards are written and read back. A task lost with its
worker is run again by Dask; a run interrupted on the client resumes like any other. Windows and
batches depend only on the rows' lengths and the workers' device type, so the store has the bytes of
a single-process run on that device type.
"""

from __future__ import annotations

import threading
from typing import Any

import zarr

from neurosel.devices import resolve_device
from neurosel.errors import InputError
from neurosel.extraction._model import Encoder, load_encoder
from neurosel.extraction._tokens import Tokenized
from neurosel.extraction._windows import write_rows
from neurosel.progress import ExtractProgress
from neurosel.scaleout import Runner
from neurosel.store import Layout, Written, activation_array, commit_windows

_ENCODERS: dict[tuple[str, str], Encoder] = {}  # on a worker: loaded once, used by every later task
_ENCODERS_LOCK = threading.Lock()


def worker_device(device: str) -> str:
    """The torch device type ("cpu" or "cuda") extraction uses on a worker for `device` (a worker
    spec, `Runner.placed`)."""
    return resolve_device(device).for_stage("extract").torch.type


def probe_worker_device(runner: Runner, device: str) -> str:
    """The torch device type a worker of `runner`'s cluster resolves `device` to (one task)."""
    return runner.client.submit(worker_device, device, pure=False).result()


def extract_on_cluster(
    runner: Runner,
    out: str,
    group: zarr.Group,
    meta: dict[str, Any],
    model: Any,
    tokens: Tokenized,
    device: str,
    precision: str,
    layout: Layout,
    token_budget: int | None,
    progress: bool,
) -> None:
    """Rows [rows_committed, n) as one task per window on the cluster, committed here in order.
    `device` is the workers' spec (`Runner.placed`)."""
    from distributed import KilledWorker, as_completed

    client = runner.client
    first, n, window = meta["rows_committed"], meta["n"], layout.shard_rows
    if isinstance(model, tuple):  # a live (model, tokenizer): sent to each worker once
        [model_ref] = client.scatter([model], broadcast=True, hash=False)
        model_key = model_ref.key
    else:
        model_ref = model_key = str(model)
    futures = {
        client.submit(
            _extract_window, out, model_ref, model_key, meta, device, precision, layout, token_budget,
            tokens.rows(a, min(a + window, n)), a, pure=False,
        ): a
        for a in range(first, n, window)
    }  # fmt: skip
    array_path = activation_array(meta["pooling"])
    bar = ExtractProgress(n, first, progress)
    done: dict[int, Written] = {}
    try:
        for future in as_completed(futures):
            try:
                written: Written = future.result()
            except KilledWorker as e:
                a = futures[future]
                raise InputError(
                    f"out {out}: every worker that ran rows {a}..{min(a + window, n)} died"
                    f" ({e}); {meta['rows_committed']} rows are committed: check the workers' memory and "
                    "logs, then re-run the same command to resume"
                ) from None
            done[written.start] = written
            bar.update(written.end - written.start, int(tokens.lengths[written.start : written.end].sum()))
            ready, row = [], meta["rows_committed"]
            while row in done:  # the windows now contiguous with the committed rows
                ready.append(done.pop(row))
                row = ready[-1].end
            if ready:
                commit_windows(group, meta, array_path, ready)
    finally:
        bar.close()
        client.cancel(list(futures))


def _extract_window(
    out: str,
    model: Any,
    model_key: str,
    meta: dict[str, Any],
    device: str,
    precision: str,
    layout: Layout,
    token_budget: int | None,
    tokens: Tokenized,
    base: int,
) -> Written:
    """On a worker: forward one window of rows and write its shards; the client commits it."""
    encoder = _encoder(model, model_key, device)
    if encoder.weights_hash != meta["weights_hash"]:
        raise InputError(
            f"model {meta['model_id']!r}: a worker loaded other weights than the client "
            f"({encoder.weights_hash[:12]} ≠ {meta['weights_hash'][:12]}); "
            "give every worker the same model files"
        )
    group = zarr.open_group(out, mode="r+", use_consolidated=False)
    written: list[Written] = []
    local = {**meta, "rows_committed": base}  # this window only; the client owns the real progress
    write_rows(
        group, local, encoder, tokens, encoder.model.device, precision, layout, token_budget,
        base=base, on_written=written.append,
    )  # fmt: skip
    [window] = written
    return window


def _encoder(model: Any, key: str, device: str) -> Encoder:
    torch_device = resolve_device(device).for_stage("extract").torch
    with _ENCODERS_LOCK:  # tasks on one worker's threads share one copy of the weights
        cache_key = (key, str(torch_device))
        if cache_key not in _ENCODERS:
            _ENCODERS[cache_key] = load_encoder(model, torch_device)
        return _ENCODERS[cache_key]
