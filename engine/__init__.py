"""neurosel: activation cache and neuron scoring for neuron-level transfer with BERT-family encoders."""

from __future__ import annotations

from engine.errors import InputError, NonFiniteActivationsError
from engine.extract import extract
from engine.from_array import store_from_array
from engine.stats import NeuronStats, neuron_stats
from engine.store import ActivationStore, open_store
from engine.version import __version__

__all__ = [
    "ActivationStore",
    "InputError",
    "NeuronStats",
    "NonFiniteActivationsError",
    "__version__",
    "extract",
    "neuron_stats",
    "open_store",
    "store_from_array",
]
