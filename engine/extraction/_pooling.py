"""Pool each layer's token states on the device: masked mean, first token, masked max, last real
token, or every token."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from neurosel.defaults import POOLINGS
from neurosel.errors import InputError


def pool(
    states: Sequence[torch.Tensor] | Mapping[int, torch.Tensor],
    mask: torch.Tensor,
    layers: Sequence[int],
    pooling: str,
) -> torch.Tensor:
    """Pooled float32 activations: (rows, layers, width), or (real tokens, layers, width) for 'tokens'.

    `states[layer]` is a (rows, seq, width) tensor and `mask` the (rows, seq) attention mask of
    right-padded rows; padded positions never contribute. 'cls' takes the first token (BERT's
    [CLS]), 'last' the last real token (the decoder convention: in a causal model only it has seen
    the whole text). Token pooling keeps every unpadded token (special tokens included) in row-major
    order.
    """
    keep = mask.bool()
    first = states[layers[0]]
    rows = int(keep.sum()) if pooling == "tokens" else first.shape[0]
    out = torch.empty((rows, len(layers), first.shape[-1]), dtype=torch.float32, device=first.device)
    if pooling == "mean":
        weights = (mask.to(torch.float32) / mask.sum(1, keepdim=True).to(torch.float32)).unsqueeze(1)
    elif pooling == "last":
        batch = torch.arange(first.shape[0], device=first.device)
        last = mask.sum(1) - 1
    for j, layer in enumerate(layers):
        h = states[layer].to(torch.float32)
        if pooling == "mean":
            out[:, j] = torch.bmm(weights, h).squeeze(1)
        elif pooling == "cls":
            out[:, j] = h[:, 0]
        elif pooling == "last":
            out[:, j] = h[batch, last]
        elif pooling == "max":
            out[:, j] = h.masked_fill(~keep.unsqueeze(-1), float("-inf")).amax(1)
        elif pooling == "tokens":
            out[:, j] = h[keep]
        else:
            raise InputError(f"pooling {pooling!r}: unknown; use one of {', '.join(POOLINGS[1:])}")
    return out
