"""neurosel: activation cache and neuron scoring for neuron-level transfer with BERT-family encoders.

The public API, one name per pipeline stage, loaded on first use so that `import engine` is cheap
and pulls in torch, transformers or scikit-learn only when a function that needs them runs:

- extraction: `extract` (text → store; torch and transformers);
- store: `open_store`, `store_from_array`, `ActivationStore`, `verify`;
- statistics: `neuron_stats`, `NeuronStats`;
- solver: `importance`, `Importance`, `select`, `Selection`, `SparseLogisticSelector` (scikit-learn);
- cross-domain transfer: `transfer`, `TransferResult` (scikit-learn), `fingerprint`, `Fingerprints`;
- devices and errors: `Device`, `resolve_device`, `InputError`, `NonFiniteActivationsError`.

The stages themselves are the sub-packages `engine.extraction`, `engine.store`, `engine.stats`,
`engine.solver`, `engine.crossdomain`, `engine.report` and `engine.experiments`
(docs/architecture.md).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from engine.devices import Device, resolve_device
from engine.errors import InputError, NonFiniteActivationsError, SupportWarning
from engine.version import __version__

_PUBLIC = {
    "extract": "engine.extraction",
    "ActivationStore": "engine.store",
    "open_store": "engine.store",
    "store_from_array": "engine.store",
    "verify": "engine.store",
    "NeuronStats": "engine.stats",
    "neuron_stats": "engine.stats",
    "Importance": "engine.solver",
    "importance": "engine.solver",
    "Selection": "engine.solver",
    "select": "engine.solver",
    "SparseLogisticSelector": "engine.solver",
    "TransferResult": "engine.crossdomain",
    "transfer": "engine.crossdomain",
    "Fingerprints": "engine.crossdomain",
    "fingerprint": "engine.crossdomain",
}

__all__ = [
    "ActivationStore",
    "Device",
    "Fingerprints",
    "Importance",
    "InputError",
    "NeuronStats",
    "NonFiniteActivationsError",
    "Selection",
    "SparseLogisticSelector",
    "SupportWarning",
    "TransferResult",
    "__version__",
    "extract",
    "fingerprint",
    "importance",
    "neuron_stats",
    "open_store",
    "resolve_device",
    "select",
    "store_from_array",
    "transfer",
    "verify",
]

if TYPE_CHECKING:
    from engine.crossdomain import Fingerprints, TransferResult, fingerprint, transfer
    from engine.extraction import extract
    from engine.solver import Importance, Selection, SparseLogisticSelector, importance, select
    from engine.stats import NeuronStats, neuron_stats
    from engine.store import ActivationStore, open_store, store_from_array, verify


def __getattr__(name: str) -> Any:
    """Load a public name's sub-package on first use (PEP 562)."""
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
