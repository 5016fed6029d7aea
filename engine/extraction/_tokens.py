"""Tokenize a corpus once into flat arrays, then cut padded batches from them on demand."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from neurosel.extraction._batching import padded_width
from neurosel.extraction._inputs import Corpus

TOKENIZE_BLOCK = 4096  # texts per tokenizer call: large enough to use the fast tokenizer's threads


@dataclass(frozen=True)
class Tokenized:
    """All token ids back to back: row i is ids[offsets[i]:offsets[i+1]]."""

    ids: np.ndarray
    type_ids: np.ndarray | None
    offsets: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets).astype(np.int32)

    def rows(self, start: int, stop: int) -> Tokenized:
        """Rows [start, stop) alone (offsets from 0): what one task of a distributed run needs."""
        a, b = int(self.offsets[start]), int(self.offsets[stop])
        return Tokenized(
            ids=self.ids[a:b].copy(),
            type_ids=None if self.type_ids is None else self.type_ids[a:b].copy(),
            offsets=self.offsets[start : stop + 1] - a,
        )

    def batch(
        self, rows: np.ndarray, device: torch.device, pad_token_id: int, pad_multiple: int = 1
    ) -> dict[str, torch.Tensor]:
        """Right-padded model inputs for `rows`, padded to the longest row (rounded up)."""
        lens = self.lengths[rows]
        width = padded_width(lens.max(), pad_multiple)
        ids = np.full((rows.size, width), pad_token_id, dtype=np.int64)
        mask = np.arange(width)[None, :] < lens[:, None]
        flat = np.concatenate([np.arange(self.offsets[r], self.offsets[r + 1]) for r in rows])
        ids[mask] = self.ids[flat]
        batch = {"input_ids": ids, "attention_mask": mask.astype(np.int64)}
        if self.type_ids is not None:
            types = np.zeros((rows.size, width), dtype=np.int64)
            types[mask] = self.type_ids[flat]
            batch["token_type_ids"] = types
        return {k: torch.from_numpy(v).to(device, non_blocking=True) for k, v in batch.items()}


def tokenize(corpus: Corpus, tokenizer: Any, max_length: int, progress: Any = None) -> Tokenized:
    """Tokenize texts (or text pairs) with special tokens, truncated to max_length."""
    ids, types, lengths = [], [], []
    for start in range(0, len(corpus), TOKENIZE_BLOCK):
        texts = corpus.texts[start : start + TOKENIZE_BLOCK]
        pairs = corpus.pairs[start : start + TOKENIZE_BLOCK] if corpus.pairs else None
        enc = tokenizer(
            texts,
            pairs,
            truncation=True,
            max_length=max_length,
            return_attention_mask=False,
            return_token_type_ids=True,
        )
        for i, row in enumerate(enc["input_ids"]):
            ids.append(np.asarray(row, dtype=np.int32))
            lengths.append(len(row))
            if enc.get("token_type_ids") is not None:
                types.append(np.asarray(enc["token_type_ids"][i], dtype=np.int8))
        if progress is not None:
            progress.update(len(texts))
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return Tokenized(
        ids=np.concatenate(ids),
        type_ids=np.concatenate(types) if types else None,
        offsets=offsets,
    )


def tokenizer_hash(tokenizer: Any) -> str:
    """Identify a tokenizer by its class, normalisation and vocabulary."""
    h = hashlib.sha256(type(tokenizer).__name__.encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        spec = json.loads(backend.to_str())
        spec.pop("truncation", None)  # call-time settings, not identity
        spec.pop("padding", None)
        h.update(json.dumps(spec, sort_keys=True).encode())
    else:
        for token, index in sorted(tokenizer.get_vocab().items()):
            h.update(f"{token}\t{index}\n".encode())
    return h.hexdigest()
