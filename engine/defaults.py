"""The defaults and choices that the API and the command line share, in one place.

This module imports nothing: the command line builds its parser (and `neurosel --help`) from these
values without loading torch, the solver or the transfer code, and the engine modules that use them
import them from here, so that a default is written once.
"""

from __future__ import annotations

# The encoder of the demo and of `neurosel experiment` (neurosel.experiments.Options.model).
DEMO_MODEL = "all-MiniLM-L6-v2"

# Extraction (neurosel.extract): how token states are pooled, the precision they are computed in,
# and how activation chunks are compressed; the first of each is the default. Pooling "auto" is the
# family's convention: "mean" for encoders, "last" (the last real token) for decoders.
POOLINGS = ("auto", "mean", "cls", "max", "last", "tokens")
# Where the neurons come from (neurosel.extraction, docs/extraction.md): each layer's hidden state,
# or each block's FFN intermediate units after the activation function.
SITES = ("hidden", "ffn")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
COMPRESSIONS = ("none", "zstd")
# Storage dtypes of the activations (neurosel.store.STORAGE_DTYPES); the first is the default.
DTYPES = ("float16", "float32", "bfloat16")

# Selection (neurosel.select): the rules; importance's penalties (neurosel.solver.PENALTIES) and
# class weights; transfer's normalisations; fingerprint similarity measures.
RULES = ("top-k", "support", "mass")
PENALTY_NAMES = ("l1", "group-l1")
CLASS_WEIGHTS = ("balanced",)
NORMALISATIONS = ("source", "target")
MEASURES = ("cosine", "pearson", "jsd")
LABEL_KINDS = ("auto", "class", "numeric")

# Bytes of decoded activation blocks in flight while streaming a store.
DEFAULT_MEMORY_BUDGET = 512 << 20

# Selection and transfer: the headline k, the ks of the curves, the random-k baseline's seeds.
DEFAULT_K = 300
DEFAULT_KS = (10, 30, 100, 300, 1000)
SEEDS = 5

# How a single-source transfer ranks the neurons it selects (docs/method.md, section 1, has the
# evidence): entry into the sparse path; entry into an elastic-net path; stability selection's
# frequency over half-subsamples; the statistics-only score; the mean of the stability and
# statistics ranks; or "auto" (the default), which picks the rule by the labels' kind.
RANKINGS = ("auto", "stability+fisher", "stability", "entry", "elastic-net", "fisher")
DEFAULT_RANKING = "auto"

# Bytes of float32 activations a domain may take in memory before it is streamed. Fixed, not a
# share of the machine's memory: above it the all-neuron baselines are fitted on a row sample, so
# the choice changes results and must not depend on the machine.
IN_CORE_BYTES = 2 << 30
