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
from neurosel.extraction._windows import SiteTarget, write_rows
from neurosel.progress import ExtractProgress
from neurosel.scaleout import Runner
from neurosel.store import Written, activation_array, commit_windows

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
    outs: list[str],
    targets: list[SiteTarget],
    model: Any,
    tokens: Tokenized,
    device: str,
    precision: str,
    window_rows: int,
    token_budget: int | None,
    progress: bool,
) -> None:
    """Rows from the first one some site has not committed, as one task per window on the cluster,
    committed here in order, site by site (`outs[i]` is the store of `targets[i]`). `device` is the
    workers' spec (`Runner.placed`)."""
    from distributed import KilledWorker, as_completed

    client = runner.client
    n = targets[0].meta["n"]
    first = min(t.meta["rows_committed"] for t in targets)
    if isinstance(model, tuple):  # a live (model, tokenizer): sent to each worker once
        [model_ref] = client.scatter([model], broadcast=True, hash=False)
        model_key = model_ref.key
    else:
        model_ref = model_key = str(model)
    metas = [t.meta for t in targets]
    futures = {
        client.submit(
            _extract_window, outs, model_ref, model_key, metas, device, precision, window_rows, token_budget,
            tokens.rows(a, min(a + window_rows, n)), a, pure=False,
        ): a
        for a in range(first, n, window_rows)
    }  # fmt: skip
    bar = ExtractProgress(n, first, progress)
    done: dict[int, list[Written | None]] = {}
    try:
        for future in as_completed(futures):
            a = futures[future]
            try:
                done[a] = future.result()
            except KilledWorker as e:
                raise InputError(
                    f"out {outs[0]}: every worker that ran rows {a}..{min(a + window_rows, n)} died"
                    f" ({e}); {min(m['rows_committed'] for m in metas)} rows are committed: check the "
                    "workers' memory and logs, then re-run the same command to resume"
                ) from None
            end = min(a + window_rows, n)
            bar.update(end - a, int(tokens.lengths[a:end].sum()))
            for i, target in enumerate(targets):
                ready, row = [], target.meta["rows_committed"]
                while row in done and done[row][i] is not None:  # windows contiguous with the committed rows
                    ready.append(done[row][i])
                    row = ready[-1].end
                if ready:
                    commit_windows(target.group, target.meta, activation_array(target.meta["pooling"]), ready)
    finally:
        bar.close()
        client.cancel(list(futures))


def _extract_window(
    outs: list[str],
    model: Any,
    model_key: str,
    metas: list[dict[str, Any]],
    device: str,
    precision: str,
    window_rows: int,
    token_budget: int | None,
    tokens: Tokenized,
    base: int,
) -> list[Written | None]:
    """On a worker: forward one window of rows and write its shards in every site's store; the
    client commits them. None for a site that had already committed the window."""
    encoder = _encoder(model, model_key, device)
    if encoder.weights_hash != metas[0]["weights_hash"]:
        raise InputError(
            f"model {metas[0]['model_id']!r}: a worker loaded other weights than the client "
            f"({encoder.weights_hash[:12]} ≠ {metas[0]['weights_hash'][:12]}); "
            "give every worker the same model files"
        )
    targets, written = [], []
    for out, meta in zip(outs, metas, strict=True):
        group = zarr.open_group(out, mode="r+", use_consolidated=False)
        kept: list[Written] = []
        written.append(kept)
        # this window only; the client owns the real progress
        local = {**meta, "rows_committed": max(base, meta["rows_committed"])}
        targets.append(SiteTarget(group, local, on_written=kept.append))
    write_rows(
        targets, encoder, tokens, encoder.model.device, precision, window_rows, token_budget, base=base
    )
    return [kept[0] if kept else None for kept in written]


def _encoder(model: Any, key: str, device: str) -> Encoder:
    torch_device = resolve_device(device).for_stage("extract").torch
    with _ENCODERS_LOCK:  # tasks on one worker's threads share one copy of the weights
        cache_key = (key, str(torch_device))
        if cache_key not in _ENCODERS:
            _ENCODERS[cache_key] = load_encoder(model, torch_device)
        return _ENCODERS[cache_key]
