"""The engine's path solver as it was at a git commit, importable next to today's, for same-process
old-vs-new timings.

`load_baseline(commit, scratch)` reads engine/solver/_path.py and engine/kernels/cd.py at `commit` with
`git show`, and imports them as private modules (the old kernels module stands in for neurosel.kernels.cd
while the old solver imports); the old solver runs against today's datafits, penalties and designs,
whose interfaces it shares. `baseline_solver(module)` swaps `neurosel.importance`'s path solver for
the old one within a `with` block, so that the same store, statistics, in-core load and timings run
both. The numba kernels of the old module compile on first use: warm it up before timing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
FILES = {"cd": "engine/kernels/cd.py", "path": "engine/solver/_path.py"}


def load_baseline(commit: str, scratch: Path) -> ModuleType | str:
    """neurosel.solver._path as of `commit` (a module), or why it cannot be loaded (a string)."""
    folder = scratch / f"baseline_{commit[:12]}"
    folder.mkdir(parents=True, exist_ok=True)
    for name, path in FILES.items():
        try:
            source = subprocess.run(
                ["git", "-C", str(REPO), "show", f"{commit}:{path}"],
                capture_output=True,
                check=True,
                text=True,
            ).stdout
        except (OSError, subprocess.CalledProcessError) as e:
            return f"unavailable (git show {commit}:{path}: {getattr(e, 'stderr', '') or e})".strip()
        (folder / f"{name}.py").write_text(source, encoding="utf-8")
    tag = commit[:12]
    cd = _import(f"_baseline_cd_{tag}", folder / "cd.py")
    saved = sys.modules.get("neurosel.kernels.cd")
    sys.modules["neurosel.kernels.cd"] = cd  # the old solver binds the old kernels at import
    try:
        return _import(f"_baseline_path_{tag}", folder / "path.py")
    finally:
        if saved is None:
            sys.modules.pop("neurosel.kernels.cd", None)
        else:
            sys.modules["neurosel.kernels.cd"] = saved


def _import(name: str, path: Path) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def baseline_solver(module: ModuleType | None) -> Iterator[None]:
    """neurosel.importance runs `module.sparse_path` (the baseline) inside the block; None: today's."""
    if module is None:
        yield
        return
    from neurosel.solver import _importance

    today = _importance.sparse_path
    _importance.sparse_path = module.sparse_path
    try:
        yield
    finally:
        _importance.sparse_path = today
