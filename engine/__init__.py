"""neurosel: activation cache and neuron scoring for neuron-level transfer with BERT-family encoders."""

from __future__ import annotations

from engine.errors import InputError, NonFiniteActivationsError
from engine.extract import extract
from engine.store import ActivationStore, open_store
from engine.version import __version__

__all__ = [
    "ActivationStore",
    "InputError",
    "NonFiniteActivationsError",
    "__version__",
    "extract",
    "open_store",
]
