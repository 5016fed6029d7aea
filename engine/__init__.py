"""neurosel: activation cache and neuron scoring for neuron-level transfer with BERT-family encoders.

The public API, one name per pipeline stage, loaded on first use so that `import neurosel` is cheap
and pulls in torch, transformers or scikit-learn only when a function that needs them runs:

- extraction: `extract` (text → store; torch and transformers);
- store: `open_store`, `store_from_array`, `ActivationStore`, `verify`, `export`;
- statistics: `neuron_stats`, `NeuronStats`;
- solver: `importance`, `Importance`, `select`, `Selection`, `SparseLogisticSelector` (scikit-learn);
- cross-domain transfer: `transfer`, `TransferResult` (scikit-learn), `fingerprint`, `Fingerprints`;
- devices and errors: `Device`, `resolve_device`, and every user-facing error and warning (all in
  `neurosel.errors`): `InputError`, `NonFiniteActivationsError`, `StoreLockedError`,
  `DamagedStoreError`, `SupportWarning`, `ReadOnlyStoreWarning`, `ConvergenceWarning` (scikit-learn's
  subclass; loaded on use).

The stages themselves are the sub-packages `neurosel.extraction`, `neurosel.store`, `neurosel.stats`,
`neurosel.solver`, `neurosel.crossdomain`, `neurosel.report` and `neurosel.experiments`
(docs/architecture.md).
"""

from __future__ import annotations

if __name__ != "neurosel":  # the source folder engine/ is installed as neurosel (docs/architecture.md)
    raise ImportError(f"this folder is the package neurosel: import neurosel, not {__name__}")

import importlib
from typing import TYPE_CHECKING, Any

from neurosel.devices import Device, resolve_device
from neurosel.errors import (
    DamagedStoreError,
    InputError,
    NonFiniteActivationsError,
    ReadOnlyStoreWarning,
    StoreLockedError,
    SupportWarning,
)
from neurosel.version import __version__

_PUBLIC = {
    "extract": "neurosel.extraction",
    "ActivationStore": "neurosel.store",
    "open_store": "neurosel.store",
    "store_from_array": "neurosel.store",
    "verify": "neurosel.store",
    "export": "neurosel.store",
    "NeuronStats": "neurosel.stats",
    "neuron_stats": "neurosel.stats",
    "Importance": "neurosel.solver",
    "importance": "neurosel.solver",
    "Selection": "neurosel.solver",
    "select": "neurosel.solver",
    "SparseLogisticSelector": "neurosel.solver",
    "TransferResult": "neurosel.crossdomain",
    "transfer": "neurosel.crossdomain",
    "Fingerprints": "neurosel.crossdomain",
    "fingerprint": "neurosel.crossdomain",
    "ConvergenceWarning": "neurosel.errors",  # subclasses scikit-learn's: loaded on first use
}

__all__ = [
    "ActivationStore",
    "ConvergenceWarning",
    "DamagedStoreError",
    "Device",
    "Fingerprints",
    "Importance",
    "InputError",
    "NeuronStats",
    "NonFiniteActivationsError",
    "ReadOnlyStoreWarning",
    "Selection",
    "SparseLogisticSelector",
    "StoreLockedError",
    "SupportWarning",
    "TransferResult",
    "__version__",
    "export",
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
    from neurosel.crossdomain import Fingerprints, TransferResult, fingerprint, transfer
    from neurosel.errors import ConvergenceWarning
    from neurosel.extraction import extract
    from neurosel.solver import Importance, Selection, SparseLogisticSelector, importance, select
    from neurosel.stats import NeuronStats, neuron_stats
    from neurosel.store import ActivationStore, export, open_store, store_from_array, verify


def __getattr__(name: str) -> Any:
    """Load a public name's sub-package on first use (PEP 562)."""
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'neurosel' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
