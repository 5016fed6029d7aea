"""Extraction: text to a store of per-layer pooled activations.

Inputs are read into one validated corpus (`_inputs`), tokenised once into flat arrays (`_tokens`),
cut into token-budget batches of similar length (`_batching`), run through the frozen encoder under
autocast (`_model`; only the families `_families` lists, each with the module every site reads),
pooled on the device (`_pooling`), staged to the host through pinned buffers
(`_staging`) and written window by window by the store's writer (`_windows`); `_extract` is the
entry point, `_cluster` runs one window per task on a Dask cluster. torch and
transformers are used here and nowhere else.
"""

from __future__ import annotations

from neurosel.extraction._batching import MAX_PADDING, padded_width, plan_batches, plan_windows
from neurosel.extraction._extract import extract, resolve_layers
from neurosel.extraction._families import BLOCKS, FAMILIES, SITES, Family, SitePath, family_of
from neurosel.extraction._inputs import Corpus, load_corpus
from neurosel.extraction._model import Encoder, autocast, load_encoder, resolve_model_path, resolve_precision
from neurosel.extraction._pooling import POOLINGS, pool
from neurosel.extraction._staging import HostTransfer, Staged
from neurosel.extraction._tokens import Tokenized, tokenize, tokenizer_hash
from neurosel.extraction._windows import MAX_ROWS, PAD_MULTIPLE, TOKEN_BUDGET, to_storage

__all__ = [
    "BLOCKS",
    "FAMILIES",
    "MAX_PADDING",
    "MAX_ROWS",
    "PAD_MULTIPLE",
    "POOLINGS",
    "SITES",
    "TOKEN_BUDGET",
    "Corpus",
    "Encoder",
    "Family",
    "HostTransfer",
    "SitePath",
    "Staged",
    "Tokenized",
    "autocast",
    "extract",
    "family_of",
    "load_corpus",
    "load_encoder",
    "padded_width",
    "plan_batches",
    "plan_windows",
    "pool",
    "resolve_layers",
    "resolve_model_path",
    "resolve_precision",
    "to_storage",
    "tokenize",
    "tokenizer_hash",
]
