"""The extraction loop: windows of one shard, length-sorted batches, one forward pass, every site's
pooled activations staged and written to its own store.

Used by `extract` in one process and by each Dask task (neurosel.extraction._cluster) alike.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from neurosel.errors import InputError
from neurosel.extraction._batching import plan_windows
from neurosel.extraction._families import HIDDEN, ForwardStop, SiteCapture, StopForward, stop_layer
from neurosel.extraction._model import Encoder, autocast
from neurosel.extraction._pooling import pool
from neurosel.extraction._staging import HostTransfer
from neurosel.extraction._tokens import Tokenized
from neurosel.progress import ExtractProgress
from neurosel.store import StoreWriter, Written, storage_itemsize

# Tokens per batch (rows × padded length) and a cap on rows, by device type.
TOKEN_BUDGET = {"cpu": 8192, "cuda": 65536}
MAX_ROWS = {"cpu": 256, "cuda": 2048}
PAD_MULTIPLE = {"cpu": 1, "cuda": 8}  # tensor cores like multiples of 8; the CPU pays per token
STAGING_SLOTS = 4  # pinned host buffers per site: a batch stages two tensors per site (values, counts)


@dataclass
class SiteTarget:
    """One site's store in a pass: its group and metadata (`site`, `layers`, `hidden` = the site's
    width, `pooling`, `dtype`, `rows_committed`), and what to do with each written window (default:
    commit it in the store at once; a Dask worker collects them for the client instead)."""

    group: Any
    meta: dict[str, Any]
    on_written: Callable[[Written], None] | None = None
    writer: StoreWriter | None = field(default=None, repr=False)

    @property
    def site(self) -> str:
        return self.meta.get("site", HIDDEN)


def write_rows(
    targets: Sequence[SiteTarget],
    encoder: Encoder,
    tokens: Tokenized,
    device: torch.device,
    precision: str,
    window_rows: int,
    token_budget: int | None,
    *,
    base: int = 0,
    bar: ExtractProgress | None = None,
) -> None:
    """The extraction loop over the rows of `tokens` (store rows `base`, `base` + 1, ...) from the
    first row some target has not committed: windows of `window_rows` (one shard of every target's
    store), length-sorted batches within each window, one forward pass per batch feeding every
    target (stopped after the deepest layer any target stores), each window written whole. A
    target that already committed a window (a resumed run whose sites stopped at different windows)
    skips it.
    The windows and batches depend only on the rows' lengths and the device type, so any split of
    the rows at window boundaries computes the same batches, and writes the same bytes."""
    pooling = targets[0].meta["pooling"]  # one pooling and one dtype for every site of a pass
    lengths = tokens.lengths
    offsets = tokens.offsets if pooling == "tokens" else None
    budget = token_budget or TOKEN_BUDGET[device.type]
    max_rows = MAX_ROWS[device.type]
    pad_multiple = PAD_MULTIPLE[device.type]
    window = window_rows
    if offsets is not None:  # a window of examples whose tokens fill about one shard
        window = max(1, window_rows // max(1, int(lengths.mean())))
    items = budget if pooling == "tokens" else max_rows
    widest = max(_row_bytes(t.meta) for t in targets)
    transfer = HostTransfer(device, items * widest, slots=STAGING_SLOTS * len(targets))
    for target in targets:
        target.writer = StoreWriter(target.group, target.meta, transfer, lengths, offsets, target.on_written)
    # Below the last layer the forward stops after the deepest requested one, and hidden states are
    # read by hooks like every other site; otherwise the whole model runs and hands them over.
    layers = [layer for t in targets for layer in t.meta["layers"]]
    stop = stop_layer(encoder.model_type, encoder.base_model.config, layers)
    captures = {
        t.site: SiteCapture(encoder.base_model, t.site, encoder.model_type, t.meta["layers"])
        for t in targets
        if t.site != HIDDEN or stop is not None
    }
    hooks: list[SiteCapture | ForwardStop] = list(captures.values())
    if stop is not None:  # after the captures: a capture of the same block must see its input first
        hooks.append(ForwardStop(encoder.base_model, encoder.model_type, stop))
    hidden_wanted = stop is None and any(t.site == HIDDEN for t in targets)
    first = max(0, min(t.meta["rows_committed"] for t in targets) - base)
    try:
        for start, end, batches in plan_windows(lengths, first, window, budget, max_rows, pad_multiple):
            active = [t for t in targets if t.meta["rows_committed"] < base + end]
            for target in active:
                target.writer.begin_window(base + start, base + end)
            for rows in batches:
                batch = model_inputs(encoder, tokens, rows + start, device, pad_multiple)
                for hook in hooks:
                    hook.clear()
                with torch.inference_mode(), autocast(precision, device):
                    hidden = forward(encoder.model, batch, hidden_wanted)
                    for target in active:
                        capture = captures.get(target.site)
                        states = hidden if capture is None else capture.states(target)
                        pooled = pool(states, batch["attention_mask"], target.meta["layers"], pooling)
                        stored, bad = to_storage(pooled, target.meta["dtype"])
                        target.writer.batch(rows, transfer.send(stored), transfer.send(bad))
                if bar is not None:
                    bar.update(rows.size, int(lengths[rows + start].sum()))
            for target in active:
                target.writer.end_window()
    except BaseException as error:
        for target in targets:
            with contextlib.suppress(BaseException):
                target.writer.close()  # commits finished windows; drops the window in progress
        if isinstance(error, torch.OutOfMemoryError):
            raise InputError(
                f"device {device}: out of memory with a token budget of {budget}; "
                f"pass a smaller --token-budget (e.g. {budget // 2})"
            ) from None
        raise
    finally:
        for hook in hooks:
            hook.remove()
    for target in targets:
        target.writer.close()


def forward(model: Any, batch: dict[str, torch.Tensor], hidden_states: bool) -> Any:
    """One forward pass of `batch`: the model's hidden states when asked for, else None. A forward
    ended early by a ForwardStop hook returns None too: its hooks hold everything the pass needs."""
    try:
        return model(**batch, output_hidden_states=hidden_states).hidden_states
    except StopForward:
        return None


def model_inputs(
    encoder: Encoder, tokens: Tokenized, rows: np.ndarray, device: torch.device, pad_multiple: int = 1
) -> dict[str, torch.Tensor]:
    """The forward's inputs for `rows`: right-padded ids and attention mask, and token type ids only
    for families whose forward gives them meaning (neurosel.extraction._families.Family). Right
    padding is right for decoders too: position ids count from the first token, and a causal
    model's real tokens never attend to the padding after them."""
    batch = tokens.batch(rows, device, encoder.tokenizer.pad_token_id or 0, pad_multiple)
    if not encoder.takes_token_types:
        batch.pop("token_type_ids", None)
    return batch


def site_width(encoder: Encoder, tokens: Tokenized, site: str) -> int:
    """Neurons per layer at `site`: the hidden size, or what one forward of the first example shows
    at the site's module (the FFN's intermediate size, whatever the config calls it)."""
    if site == HIDDEN:
        return encoder.hidden
    capture = SiteCapture(encoder.base_model, site, encoder.model_type, [encoder.num_layers])
    try:
        with torch.inference_mode():
            encoder.model(**model_inputs(encoder, tokens.rows(0, 1), np.array([0]), encoder.model.device))
        return int(capture.tensor(encoder.num_layers).shape[-1])
    finally:
        capture.remove()


def _row_bytes(meta: dict[str, Any]) -> int:
    return len(meta["layers"]) * meta["hidden"] * storage_itemsize(meta["dtype"])


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
