"""Names and constants of the store format (docs/store-format.md), in one place."""

from __future__ import annotations

# 2: the commit manifest, dimension names on every array, coordinates; 3: every file recorded with its
# CRC32C (no null entries), checked on every read (docs/store-format.md, "Versions")
FORMAT_VERSION = 3
META_KEY = "neurosel"
DIMENSIONS = ("example", "layer", "neuron")
TOKEN_DIMENSIONS = ("token", "layer", "neuron")


def activation_array(pooling: str) -> str:
    """The name of the activation array: one row per example, or per token for token pooling."""
    return "token_activations" if pooling == "tokens" else "activations"
