"""neurosel: activation cache and neuron scoring for neuron-level transfer with BERT-family encoders."""

from __future__ import annotations

from engine.errors import InputError, NonFiniteActivationsError
from engine.extract import extract
from engine.from_array import store_from_array
from engine.importance import Importance, importance
from engine.selection import Selection, select
from engine.selector import SparseLogisticSelector
from engine.stats import NeuronStats, neuron_stats
from engine.store import ActivationStore, open_store
from engine.transfer import TransferResult, transfer
from engine.version import __version__

__all__ = [
    "ActivationStore",
    "Importance",
    "InputError",
    "NeuronStats",
    "NonFiniteActivationsError",
    "Selection",
    "SparseLogisticSelector",
    "TransferResult",
    "__version__",
    "extract",
    "importance",
    "neuron_stats",
    "open_store",
    "select",
    "store_from_array",
    "transfer",
]
