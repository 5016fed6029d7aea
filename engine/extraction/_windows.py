"""The extraction loop: windows of one shard, length-sorted batches, forward, pool, stage, write.

Used by `extract` in one process and by each Dask task (neurosel.extraction._cluster) alike.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch

from neurosel.errors import InputError
from neurosel.extraction._batching import plan_windows
from neurosel.extraction._model import autocast
from neurosel.extraction._pooling import pool
from neurosel.extraction._staging import HostTransfer
from neurosel.extraction._tokens import Tokenized
from neurosel.progress import ExtractProgress
from neurosel.store import Layout, StoreWriter, Written, storage_itemsize

# Tokens per batch (rows × padded length) and a cap on rows, by device type.
TOKEN_BUDGET = {"cpu": 8192, "cuda": 65536}
MAX_ROWS = {"cpu": 256, "cuda": 2048}
PAD_MULTIPLE = {"cpu": 1, "cuda": 8}  # tensor cores like multiples of 8; the CPU pays per token


def write_rows(
    group: Any,
    meta: dict[str, Any],
    encoder: Any,
    tokens: Tokenized,
    device: torch.device,
    precision: str,
    layout: Layout,
    token_budget: int | None,
    *,
    base: int = 0,
    on_written: Callable[[Written], None] | None = None,
    bar: ExtractProgress | None = None,
) -> None:
    """The extraction loop over the rows of `tokens` (store rows `base`, `base` + 1, ...) from the
    first uncommitted one: windows of one shard, length-sorted batches within each window, each
    window written whole. `on_written` gets each written window (default: commit it in `meta` and
    the store at once); a Dask worker collects them for the client to commit in order instead.
    The windows and batches depend only on the rows' lengths and the device type, so any split of
    the rows at window boundaries computes the same batches, and writes the same bytes."""
    pooling, dtype, layer_ids = meta["pooling"], meta["dtype"], meta["layers"]
    lengths = tokens.lengths
    offsets = tokens.offsets if pooling == "tokens" else None
    budget = token_budget or TOKEN_BUDGET[device.type]
    max_rows = MAX_ROWS[device.type]
    pad_multiple = PAD_MULTIPLE[device.type]
    window = layout.shard_rows
    if offsets is not None:  # a window of examples whose tokens fill about one shard
        window = max(1, layout.shard_rows // max(1, int(lengths.mean())))
    items = budget if pooling == "tokens" else max_rows
    slot_bytes = items * len(layer_ids) * meta["hidden"] * storage_itemsize(dtype)
    transfer = HostTransfer(device, slot_bytes)
    writer = StoreWriter(group, meta, transfer, lengths, offsets, on_written)
    pad_id = encoder.tokenizer.pad_token_id or 0
    first = max(0, meta["rows_committed"] - base)
    try:
        for start, end, batches in plan_windows(lengths, first, window, budget, max_rows, pad_multiple):
            writer.begin_window(base + start, base + end)
            for rows in batches:
                batch = tokens.batch(rows + start, device, pad_id, pad_multiple)
                if not encoder.takes_token_types:
                    batch.pop("token_type_ids", None)
                with torch.inference_mode(), autocast(precision, device):
                    states = encoder.model(**batch, output_hidden_states=True).hidden_states
                    pooled = pool(states, batch["attention_mask"], layer_ids, pooling)
                    stored, bad = to_storage(pooled, dtype)
                writer.batch(rows, transfer.send(stored), transfer.send(bad))
                if bar is not None:
                    bar.update(rows.size, int(lengths[rows + start].sum()))
            writer.end_window()
    except BaseException as error:
        with contextlib.suppress(BaseException):
            writer.close()  # commits finished windows; drops the window in progress
        if isinstance(error, torch.OutOfMemoryError):
            raise InputError(
                f"device {device}: out of memory with a token budget of {budget}; "
                f"pass a smaller --token-budget (e.g. {budget // 2})"
            ) from None
        raise
    writer.close()


def to_storage(pooled: torch.Tensor, dtype: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Cast float32 activations to the storage dtype on the device; count non-finite values per row."""
    if dtype == "float32":
        stored = pooled
    elif dtype == "float16":
        stored = pooled.to(torch.float16)
    else:
        stored = pooled.to(torch.bfloat16)
    bad = (~torch.isfinite(stored)).flatten(1).sum(1, dtype=torch.int32)
    if dtype == "bfloat16":
        stored = stored.view(torch.int16)
    return stored, bad
