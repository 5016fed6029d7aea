"""Independent reference: a direct Hugging Face forward pass in float64, one text at a time."""

from __future__ import annotations

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer


def reference_activations(
    model_dir, texts, pooling: str = "mean", pairs=None, max_length: int = 128
) -> list[np.ndarray]:
    """Per text: (layers, hidden) pooled in float64, or (tokens, layers, hidden) for 'tokens'."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir, attn_implementation="eager").double().eval()
    out = []
    for i, text in enumerate(texts):
        enc = tokenizer(
            text, pairs[i] if pairs else None, truncation=True, max_length=max_length, return_tensors="pt"
        )
        with torch.no_grad():
            states = torch.stack(model(**enc, output_hidden_states=True).hidden_states)[:, 0]
        states = states.numpy()  # (layers, tokens, hidden)
        if pooling == "mean":
            out.append(states.mean(axis=1))
        elif pooling == "cls":
            out.append(states[:, 0])
        elif pooling == "max":
            out.append(states.max(axis=1))
        else:
            out.append(states.transpose(1, 0, 2))
    return out
