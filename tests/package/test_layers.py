"""The package's layers: every import under engine/ goes down (or sideways within one package), and
none reaches into another package's private modules or names.

The import graph is read from the source (ast), function-local imports and `if TYPE_CHECKING:`
imports included: a deferred or type-only import is still a dependency. The package root
(`neurosel/__init__.py`) is the public facade and may import any stage.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "engine"

# Lowest first. A package may import from its own layer or lower; packages that share a layer may
# not import each other.
LAYERS: list[tuple[str, ...]] = [
    ("defaults", "errors", "version"),
    ("params",),
    ("progress", "timing", "devices"),
    ("kernels",),
    ("store",),
    ("scaleout",),
    ("extraction", "stats"),
    ("solver",),
    ("crossdomain",),
    ("report",),
    ("experiments",),
    ("bench",),
    ("cli",),
]
LEVEL = {name: i for i, layer in enumerate(LAYERS) for name in layer}
# Edges against the order, left out of the cycle check too: none. (The benchmark that drives the
# command line, neurosel.bench.faults, is handed `neurosel.cli.main` by the CLI instead.)
UPWARD: set[tuple[str, str]] = set()


def modules() -> dict[str, Path]:
    """Every module under engine/ by its dotted name (neurosel.x.y)."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = ("neurosel", *path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports(name: str, path: Path) -> list[tuple[str, list[str], int]]:
    """(imported module, imported names, line) for every neurosel import in the module."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((target, [alias.name for alias in node.names], node.lineno))
    return [(t, names, line) for t, names, line in found if t == "neurosel" or t.startswith("neurosel.")]


def top(module: str) -> str | None:
    """The package (or top module) a dotted name belongs to; None for the root facade."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def where(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT.parent)}:{line}"


def is_private(part: str) -> bool:
    return part.startswith("_") and not part.startswith("__")


def test_every_package_has_a_layer():
    packages = {top(name) for name in modules()} - {None}
    assert packages <= set(LEVEL), f"packages without a layer in LAYERS: {sorted(packages - set(LEVEL))}"


def test_imports_go_down_the_layers():
    problems = []
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in modules().items():
        here = top(name)
        if here is None:  # the facade
            continue
        for target, _, line in imports(name, path):
            there = top(target)
            if there is None or there == here or (here, there) in UPWARD:
                continue
            edges[here].add(there)
            if LEVEL[there] > LEVEL[here]:
                problems.append(f"{where(path, line)}: {here} imports {target}, a higher layer")
            elif LEVEL[there] == LEVEL[here]:
                problems.append(f"{where(path, line)}: {here} imports {target}, a package on its own layer")
    assert not problems, "imports against the layer order:\n" + "\n".join(problems)
    assert not _cycle(edges), f"package import cycle: {' -> '.join(_cycle(edges))}"


def test_no_import_reaches_into_another_package_s_privates():
    problems = []
    for name, path in modules().items():
        here = top(name)
        if here is None:
            continue
        for target, names, line in imports(name, path):
            there = top(target)
            if there is None or there == here:
                continue
            private = [p for p in target.split(".")[2:] if is_private(p)]
            private += [n for n in names if is_private(n)]
            if private:
                problems.append(f"{where(path, line)}: {target} ({', '.join(private)}) is private to {there}")
    assert not problems, "imports of another package's private modules or names:\n" + "\n".join(problems)


def _cycle(edges: dict[str, set[str]]) -> list[str]:
    """One cycle of the package graph (its packages, the first repeated at the end), or []."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return []
