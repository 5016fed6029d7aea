"""The path solver as it was at a git commit, importable next to today's, for same-process old-vs-new
timings.

`load_baseline(commit, scratch)` reads the solver (engine/solver/_path.py) and its coordinate-descent
kernels (engine/kernels/cd.py; kernels/cd.py before the package moved under engine/) at `commit`
with `git show`, and imports them as modules of their own, `_baseline_cd_<commit>` and
`_baseline_path_<commit>`: the old solver's import of the kernels is rewritten to the old kernels'
module (and, from the commit that split the solver by algorithm, its imports of `_problem`,
`_newton_l1` and `_newton_group` to those modules as of `commit`, loaded the same way), and its
engine-era `engine.` imports to today's `neurosel.` (its datafits, penalties and designs, whose
interfaces it shares). Nothing of neurosel is replaced. Time it by passing its
`sparse_path` to `neurosel.importance(..., solver=baseline.sparse_path)`, so that the same store,
statistics, in-core load and timings run both. The numba kernels of the old module compile on first
use: warm it up before timing.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
SOURCES = {  # where each file lived, newest layout first
    "cd": ("engine/kernels/cd.py", "kernels/cd.py"),
    "path": ("engine/solver/_path.py",),
}
_PREFIX = r"(?:neurosel\.|engine\.)?"
_FROM_CD = re.compile(rf"^(\s*)from {_PREFIX}kernels\.cd import ", re.M)
_FROM_KERNELS = re.compile(rf"^(\s*)from {_PREFIX}kernels import cd\b", re.M)
_IMPORT_CD = re.compile(rf"^(\s*)import {_PREFIX}kernels\.cd\b", re.M)
_DOTTED_CD = re.compile(rf"\b{_PREFIX}kernels\.cd\.")
_ENGINE = re.compile(r"^(\s*)(from|import) engine\.", re.M)
SPLIT = {  # the modules the path solver was split into (absent before that commit), in import order
    "problem": "engine/solver/_problem.py",
    "newton_l1": "engine/solver/_newton_l1.py",
    "newton_group": "engine/solver/_newton_group.py",
}


def load_baseline(commit: str, scratch: Path, repo: Path = REPO) -> ModuleType | str:
    """The path solver module as of `commit` (its `sparse_path` has today's signature, as far as the
    commit's did), or why it cannot be loaded (a string)."""
    tag = commit[:12]
    folder = scratch / f"baseline_{tag}"
    folder.mkdir(parents=True, exist_ok=True)
    sources = {}
    for name, paths in SOURCES.items():
        source = _git_show(repo, commit, paths)
        if source is None:
            return f"unavailable (git show {commit}:{' or '.join(paths)} failed in {repo})"
        sources[name] = source
    split = {name: _git_show(repo, commit, (path,)) for name, path in SPLIT.items()}
    split = {name: source for name, source in split.items() if source is not None}
    cd_name, path_name = f"_baseline_cd_{tag}", f"_baseline_path_{tag}"
    modules = {name: f"_baseline_{name}_{tag}" for name in split}
    (folder / "cd.py").write_text(sources["cd"], encoding="utf-8")
    _import(cd_name, folder / "cd.py")
    for name, source in {**split, "path": sources["path"]}.items():
        (folder / f"{name}.py").write_text(rewrite_imports(source, cd_name, modules), encoding="utf-8")
        module = _import(modules.get(name, path_name), folder / f"{name}.py")
    return module


def rewrite_imports(source: str, cd_module: str, solver_modules: dict[str, str] | None = None) -> str:
    """The old solver's source with its kernels imports bound to `cd_module`, its imports of the
    split solver modules (`SPLIT` names) to `solver_modules`' names for them, and `engine.` imports
    to `neurosel.`."""
    source = _FROM_CD.sub(rf"\1from {cd_module} import ", source)
    source = _FROM_KERNELS.sub(rf"\1import {cd_module} as cd", source)
    source = _IMPORT_CD.sub(rf"\1import {cd_module}", source)
    source = _DOTTED_CD.sub(f"{cd_module}.", source)
    for name, module in (solver_modules or {}).items():
        source = re.sub(
            rf"^(\s*)from {_PREFIX}solver\._{name} import ", rf"\1from {module} import ", source, flags=re.M
        )
    return _ENGINE.sub(r"\1\2 neurosel.", source)


def _git_show(repo: Path, commit: str, paths: tuple[str, ...]) -> str | None:
    for path in paths:
        try:
            return subprocess.run(
                ["git", "-C", str(repo), "show", f"{commit}:{path}"],
                capture_output=True,
                check=True,
                text=True,
            ).stdout
        except (OSError, subprocess.CalledProcessError):
            continue
    return None


def _import(name: str, path: Path) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # the old solver imports its kernels by this name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module
