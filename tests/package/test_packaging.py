"""neurosel installs beside anything: one top-level import name, and Hugging Face's `kernels` (which
transformers >= 5.25 imports) is never shadowed, from the project root or from elsewhere, editable or
regular install (docs/architecture.md, "One import root")."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # `make test-fast` leaves it out; `make test` and CI run it

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "engine"  # the source folder of the package neurosel

# Run in a fresh interpreter: which `kernels` and which `neurosel` it imports, and whether a BERT
# model class loads (transformers imports Hugging Face's `kernels` on the way).
PROBE = """
import importlib.metadata, json, kernels, neurosel
from pathlib import Path
from transformers import BertConfig, BertModel

model = BertModel(BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
                             vocab_size=30))
hf = importlib.metadata.distribution("kernels").locate_file("kernels/__init__.py")
print(json.dumps({"kernels": kernels.__file__, "neurosel": neurosel.__file__,
                  "hf_kernels": str(hf.resolve()) == str(Path(kernels.__file__).resolve())}))
"""


def probe(cwd: Path, extra_path: Path | None = None) -> dict[str, object]:
    env = {**os.environ}
    if extra_path is not None:
        env["PYTHONPATH"] = str(extra_path)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built offline (no build isolation: setuptools from the venv) from a copy of this
    checkout's package files, so that no `build/` folder is left in the checkout or read from it."""
    tree = tmp_path_factory.mktemp("tree")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    shutil.copytree(SOURCE, tree / "engine", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(tree),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    [built] = out.glob("neurosel-*.whl")
    return built


def test_the_wheel_installs_one_top_level_name_and_every_source_file(wheel: Path):
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/", 1)[0] for name in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"neurosel"}
    inside = {name for name in names if name.endswith(".py")}
    expected = {"neurosel/" + p.relative_to(SOURCE).as_posix() for p in SOURCE.rglob("*.py")}
    assert inside == expected
    assert "neurosel/experiments/data/movies.jsonl" in names or any(
        n.startswith("neurosel/experiments/data/") and n.endswith(".jsonl") for n in names
    )
    dist_info = next(t for t in top if t.endswith(".dist-info"))
    top_level = f"{dist_info}/top_level.txt"
    if top_level in names:
        assert zipfile.ZipFile(wheel).read(top_level).decode().split() == ["neurosel"]
    entry = zipfile.ZipFile(wheel).read(f"{dist_info}/entry_points.txt").decode()
    assert "neurosel = neurosel.cli:main" in entry


def test_hugging_face_kernels_is_never_shadowed_from_the_project_root():
    """`python -c` from the root puts the root first on sys.path: no folder there may be `kernels`."""
    found = probe(ROOT)
    assert found["hf_kernels"], found  # the file Hugging Face's distribution installed
    assert str(found["neurosel"]) == str(SOURCE / "__init__.py")  # the editable install


def test_hugging_face_kernels_is_never_shadowed_from_elsewhere(tmp_path: Path):
    found = probe(tmp_path)
    assert found["hf_kernels"], found


def test_kernels_here_in_the_test_process_is_hugging_faces():
    """pytest runs from the project root (`make test`): the same holds inside its process."""
    import importlib.metadata

    import kernels

    installed = importlib.metadata.distribution("kernels").locate_file("kernels/__init__.py")
    assert Path(kernels.__file__).resolve() == Path(str(installed)).resolve()


@pytest.mark.parametrize("where", ["root", "elsewhere"])
def test_a_regular_install_beside_hugging_face_kernels(wheel: Path, tmp_path: Path, where: str):
    """The wheel installed as files (not editable) next to Hugging Face's `kernels`: each package
    keeps its own files, and both import from the project root and from elsewhere."""
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert not (target / "kernels").exists() and not (target / "bench").exists()
    found = probe(ROOT if where == "root" else tmp_path, extra_path=target)
    assert found["hf_kernels"], found
    assert str(found["neurosel"]) == str(target / "neurosel" / "__init__.py"), found


def test_the_source_folder_is_not_importable_under_another_name():
    """`import engine` from the project root would load a second copy of the package: it refuses."""
    proc = subprocess.run(
        [sys.executable, "-c", "import engine"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1
    assert "import neurosel, not engine" in proc.stderr.strip().splitlines()[-1]
