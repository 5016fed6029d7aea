"""The activation store (Zarr v3): format, codecs, reading, writing with commits, block streams,
derived-result groups.

Every other stage reads activations through this package: `open_store` for random access,
`iter_blocks` for the chunk passes (statistics, solver products), and `cached` (with a
`ResultKind`; `save_derived`, `load_derived` and `saved_metas` underneath) for results kept beside
the activations.
"""

from __future__ import annotations

from neurosel.defaults import COMPRESSIONS
from neurosel.errors import DamagedStoreError, StoreLockedError
from neurosel.store._bounded import use_bounded_zstd
from neurosel.store._codec import (
    STORAGE_DTYPES,
    Encoding,
    decode,
    decode_table,
    encode,
    key_table,
    storage_itemsize,
)
from neurosel.store._derived import ResultKind, cached, derived_key, load_derived, save_derived, saved_metas
from neurosel.store._export import export
from neurosel.store._format import FORMAT_VERSION, META_KEY, activation_array
from neurosel.store._from_array import store_from_array
from neurosel.store._integrity import MANIFEST_KEY, checksum, unit_rows
from neurosel.store._interop import consolidate
from neurosel.store._labels import check_labels, describe_rows, label_kind
from neurosel.store._location import is_url, local_path, remove_partials
from neurosel.store._lock import StoreLock
from neurosel.store._passes import ChunkPass, run_pass, tree_merge, tree_reduce
from neurosel.store._reader import DERIVED_GROUPS, ActivationStore, open_store
from neurosel.store._stream import (
    DEFAULT_MEMORY_BUDGET,
    DEFAULT_READERS,
    MAX_BLOCK_BYTES,
    Block,
    block_rows,
    iter_blocks,
)
from neurosel.store._verify import VerifyReport, verify
from neurosel.store._writer import (
    Layout,
    StoreWriter,
    Written,
    base_meta,
    commit_windows,
    prepare_store,
)

use_bounded_zstd()  # every zstd chunk decodes into at most its own size (engine/store/_bounded.py)

__all__ = [
    "COMPRESSIONS",
    "DEFAULT_MEMORY_BUDGET",
    "DEFAULT_READERS",
    "DERIVED_GROUPS",
    "FORMAT_VERSION",
    "MANIFEST_KEY",
    "MAX_BLOCK_BYTES",
    "META_KEY",
    "STORAGE_DTYPES",
    "ActivationStore",
    "Block",
    "ChunkPass",
    "DamagedStoreError",
    "Encoding",
    "Layout",
    "ResultKind",
    "StoreLock",
    "StoreLockedError",
    "StoreWriter",
    "VerifyReport",
    "Written",
    "activation_array",
    "base_meta",
    "block_rows",
    "cached",
    "check_labels",
    "checksum",
    "commit_windows",
    "consolidate",
    "decode",
    "decode_table",
    "derived_key",
    "describe_rows",
    "encode",
    "export",
    "is_url",
    "iter_blocks",
    "key_table",
    "label_kind",
    "load_derived",
    "local_path",
    "open_store",
    "prepare_store",
    "remove_partials",
    "run_pass",
    "save_derived",
    "saved_metas",
    "storage_itemsize",
    "store_from_array",
    "tree_merge",
    "tree_reduce",
    "unit_rows",
    "verify",
]
