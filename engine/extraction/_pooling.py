"""Pool each layer's token states on the device: masked mean, CLS, masked max, or every token."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from neurosel.defaults import POOLINGS
from neurosel.errors import InputError


def pool(
    hidden_states: Sequence[torch.Tensor], mask: torch.Tensor, layers: Sequence[int], pooling: str
) -> torch.Tensor:
    """Pooled float32 activations: (rows, layers, hidden), or (real tokens, layers, hidden) for 'tokens'.

    `mask` is the (rows, seq) attention mask; padded positions never contribute. Token pooling keeps
    every unpadded token (special tokens included) in row-major order.
    """
    keep = mask.bool()
    first = hidden_states[layers[0]]
    rows = int(keep.sum()) if pooling == "tokens" else first.shape[0]
    out = torch.empty((rows, len(layers), first.shape[-1]), dtype=torch.float32, device=first.device)
    if pooling == "mean":
        weights = (mask.to(torch.float32) / mask.sum(1, keepdim=True).to(torch.float32)).unsqueeze(1)
    for j, layer in enumerate(layers):
        h = hidden_states[layer].to(torch.float32)
        if pooling == "mean":
            out[:, j] = torch.bmm(weights, h).squeeze(1)
        elif pooling == "cls":
            out[:, j] = h[:, 0]
        elif pooling == "max":
            out[:, j] = h.masked_fill(~keep.unsqueeze(-1), float("-inf")).amax(1)
        elif pooling == "tokens":
            out[:, j] = h[keep]
        else:
            raise InputError(f"pooling {pooling!r}: unknown; use one of {', '.join(POOLINGS)}")
    return out
