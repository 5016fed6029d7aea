"""`import neurosel` is cheap, and scoring never needs torch: what each entry point loads, measured in
a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

import neurosel
from tests.conftest import build_store

HEAVY = ("torch", "transformers", "sklearn")


def loaded_after(code: str) -> dict[str, bool]:
    """Which heavy packages a fresh interpreter has imported after running `code`."""
    probe = code + f"\nimport json, sys\nprint(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_import_engine_loads_no_heavy_package():
    assert loaded_after("import neurosel") == dict.fromkeys(HEAVY, False)


def test_statistics_and_importance_on_a_store_never_import_torch(tmp_path):
    build_store(  # class 1 adds 0, 1/7, …, 1 to the 8 units of each layer
        tmp_path / "s.zarr", n=120, layers=2, hidden=8, labels_first=True, signed=False, planted=range(16),
        effect=np.tile(np.linspace(0, 1, 8), 2), dtype="float16",
    )  # fmt: skip
    code = (
        "import neurosel\n"
        f"store = neurosel.open_store({str(tmp_path / 's.zarr')!r})\n"
        "neurosel.neuron_stats(store, device='auto', progress=False)\n"
        "sel = neurosel.select(neurosel.importance(store, device='auto', n_lambdas=5), k=4)\n"
        "assert sel.neurons.size == 4\n"
    )
    loaded = loaded_after(code)
    assert not loaded["torch"] and not loaded["transformers"]


def test_public_names_resolve_and_list():
    for name in neurosel.__all__:
        assert getattr(neurosel, name) is not None, name
    assert set(neurosel.__all__) <= set(dir(neurosel))
