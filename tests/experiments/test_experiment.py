"""Pooling the similarity–transfer correlation over experiments, and the terminal summary."""

from __future__ import annotations

import json

import numpy as np
from scipy.stats import spearmanr

from neurosel.crossdomain import similarity
from neurosel.experiments import pooled_correlation, summary


def results(name, fingerprints, scores):
    rows = [
        {"sources": [s], "target": t, "normalisation": norm, "scores": {"selected": v + (norm == "target")}}
        for (s, t), v in scores.items()
        for norm in ("source", "target")
    ]
    return {"experiment": name, "metric": "accuracy", "fingerprints": fingerprints, "transfers": rows}


def test_pooled_correlation_spans_experiments(tmp_path):
    a = results("a", {"x": [50, 50], "y": [60, 40]}, {("x", "y"): 0.7, ("y", "x"): 0.8})
    b = results("b", {"u": [10, 90], "v": [90, 10], "w": [20, 80]}, {("u", "v"): 0.5, ("u", "w"): 0.9})
    paths = []
    for r in (a, b):
        paths.append(tmp_path / f"{r['experiment']}.json")
        paths[-1].write_text(json.dumps(r))
    pooled = pooled_correlation(paths, permutations=999)
    assert {(p["source"], p["target"]) for p in pooled["pairs"]} == {
        ("a/x", "a/y"), ("a/y", "a/x"), ("b/u", "b/v"), ("b/u", "b/w")
    }  # fmt: skip
    sims = [similarity(np.array(p["source_fp"]), np.array(p["target_fp"])) for p in [
        {"source_fp": [50, 50], "target_fp": [60, 40]}, {"source_fp": [60, 40], "target_fp": [50, 50]},
        {"source_fp": [10, 90], "target_fp": [90, 10]}, {"source_fp": [10, 90], "target_fp": [20, 80]},
    ]]  # fmt: skip
    assert np.isclose(pooled["spearman"], spearmanr(sims, [0.7, 0.8, 0.5, 0.9])[0])
    assert all(p["score"] < 1 for p in pooled["pairs"])  # source-normalised rows only


def test_summary_averages_each_method(tmp_path):
    r = results("a", {"x": [50, 50], "y": [60, 40]}, {("x", "y"): 0.7, ("y", "x"): 0.8})
    path = tmp_path / "r.json"
    path.write_text(json.dumps(r))
    text = summary(path)
    assert "source-normalised (2): selected 0.750" in text and "target-normalised (2): selected 1.750" in text


def test_summary_names_datasets_whose_selection_was_filled(tmp_path):
    r = results("a", {"x": [50, 50], "y": [60, 40]}, {("x", "y"): 0.7, ("y", "x"): 0.8})
    r["paths"] = {
        "x": {"k": 300, "entered": 1000, "filled": 0, "separation_lambda": None},
        "y": {"k": 300, "entered": 212, "filled": 88, "separation_lambda": 0.001},
    }
    path = tmp_path / "r.json"
    path.write_text(json.dumps(r))
    assert "never entered the sparse path: y 88 of 300" in summary(path)
    del r["paths"]
    path.write_text(json.dumps(r))
    assert "never entered" not in summary(path)


def test_saved_jobs_are_keyed_by_the_code_that_computed_them(tmp_path):
    """The experiment runner reuses a saved transfer job only when its options and the engine's
    sources are the same: the digest changes with any byte of a .py file, and not with other files."""
    from neurosel.experiments._runner import Options, code_digest, source_digest

    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_text("x = 1\n")
    (package / "sub" / "b.py").write_text("y = 2\n")
    before = source_digest(package)
    (package / "notes.md").write_text("not code")
    assert source_digest(package) == before
    (package / "sub" / "b.py").write_text("y = 3\n")
    assert source_digest(package) != before
    (package / "sub" / "b.py").rename(package / "b2.py")
    assert source_digest(package) not in (before,)
    assert len(code_digest()) == 16 and Options().key("single-books") == Options().key("single-books")
    assert Options().key("single-books") != Options(k=100).key("single-books")
    assert Options().key("single-books") != Options(in_core_bytes=1 << 20).key("single-books")
