"""The docs stay true. Every signature docs/api.md writes out (a code line `name(params)` naming a
public callable) has the real callable's parameters, in order, with their kinds and defaults; the
public names it lists are `neurosel.__all__`; docs/architecture.md's map names every package and
top-level module. A changed signature or a new module fails here until the doc follows."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

import neurosel

API = Path(__file__).resolve().parents[2] / "docs" / "api.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
BLOCK_ANY = re.compile(r"```\w*\n(.*?)```", re.S)
SIGNATURE = re.compile(r"^([A-Za-z_][\w.]*)\((.*?)\)(?:\s*->\s*[^\n]+)?$", re.S | re.M)


def documented() -> list[tuple[str, str]]:
    """(dotted name, parameter text) of every signature in the Python blocks of docs/api.md."""
    found = []
    for block in BLOCK.findall(API.read_text(encoding="utf-8")):
        for statement in re.split(r"\n(?=[A-Za-z_])", block):
            statement = statement.strip()
            if statement.startswith(("import ", "from ")):
                continue
            m = SIGNATURE.match(statement)
            if m:
                found.append((m.group(1), m.group(2)))
    return found


def resolve(name: str):
    """The callable a documented name refers to (`neurosel.x`, `neurosel.pkg.x`, or a bare name
    imported in the same block from a documented sub-package)."""
    parts = name.split(".")
    if parts[0] != "neurosel":
        for package in ("neurosel.solver", "neurosel.crossdomain", "neurosel.experiments"):
            module = importlib.import_module(package)
            if hasattr(module, name):
                return getattr(module, name)
        raise AssertionError(f"docs/api.md documents {name}, which no documented package exports")
    target = importlib.import_module("neurosel")
    for i, part in enumerate(parts[1:], start=1):
        if hasattr(target, part):
            target = getattr(target, part)
        else:
            target = importlib.import_module(".".join(parts[: i + 1]))
    return target


def parameters(text: str) -> list[tuple[str, str, str | None]]:
    """(name, kind, default source) of a documented parameter list."""
    args = ast.parse(f"def f({text}): pass").body[0].args
    out = []
    positional = args.posonlyargs + args.args
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    for a, d in zip(positional, defaults, strict=True):
        out.append((a.arg, "positional", None if d is None else ast.unparse(d)))
    if args.vararg:
        out.append((args.vararg.arg, "var_positional", None))
    for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        out.append((a.arg, "keyword_only", None if d is None else ast.unparse(d)))
    if args.kwarg:
        out.append((args.kwarg.arg, "var_keyword", None))
    return out


KINDS = {
    inspect.Parameter.POSITIONAL_ONLY: "positional",
    inspect.Parameter.POSITIONAL_OR_KEYWORD: "positional",
    inspect.Parameter.VAR_POSITIONAL: "var_positional",
    inspect.Parameter.KEYWORD_ONLY: "keyword_only",
    inspect.Parameter.VAR_KEYWORD: "var_keyword",
}


def same_default(doc: str | None, real: object) -> bool:
    if doc is None:
        return real is inspect.Parameter.empty
    if real is inspect.Parameter.empty:
        return False
    try:
        value = eval(doc, {"Options": importlib.import_module("neurosel.experiments").Options})
    except Exception:  # a name the doc writes symbolically
        return True
    return value == real or (isinstance(real, tuple) and tuple(value) == real)


SIGNATURES = documented()


def test_the_doc_writes_out_the_main_signatures():
    names = {name for name, _ in SIGNATURES}
    for public in ("neurosel.extract", "neurosel.neuron_stats", "neurosel.importance", "neurosel.transfer"):
        assert public in names


@pytest.mark.parametrize(("name", "text"), SIGNATURES, ids=[name for name, _ in SIGNATURES])
def test_documented_signature_equals_the_code(name: str, text: str):
    real = inspect.signature(resolve(name))
    doc = parameters(text)
    actual = [(p.name, KINDS[p.kind]) for p in real.parameters.values()]
    assert [(n, k) for n, k, _ in doc] == actual, f"docs/api.md's {name} has other parameters than the code"
    for (pname, _, default), p in zip(doc, real.parameters.values(), strict=True):
        assert same_default(default, p.default), (
            f"{name}: docs/api.md says {pname}={default}, code {p.default!r}"
        )


def test_the_listed_public_names_are_neurosel_all():
    text = API.read_text(encoding="utf-8")
    intro = text[text.index("The public names") : text.index("They load on first use")]
    listed = set(re.findall(r"`neurosel\.(\w+)`", intro)) - {"__all__"}
    assert listed == set(neurosel.__all__)


ARCHITECTURE = API.parent / "architecture.md"
SOURCE = API.parents[1] / "engine"


def test_the_architecture_map_names_every_package_and_top_module():
    """The map in docs/architecture.md (its first code block) lists exactly the sub-packages and
    top-level modules of engine/."""
    block = BLOCK_ANY.search(ARCHITECTURE.read_text(encoding="utf-8")).group(1)
    mapped = set(re.findall(r"^  (\w+)(?:/|\.py)", block, re.M)) - {"__init__"}
    real = {p.name for p in SOURCE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    real |= {p.stem for p in SOURCE.glob("*.py") if p.stem != "__init__"}
    assert mapped == real, f"map only: {sorted(mapped - real)}; code only: {sorted(real - mapped)}"
