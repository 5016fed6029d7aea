"""The demo: the shipped corpus through the whole pipeline, down to the report."""

from __future__ import annotations

import json

import pytest

import neurosel
from neurosel.cli import main
from neurosel.experiments import demo_corpus, run_demo

pytestmark = pytest.mark.slow  # `make test-fast` leaves it out; `make test` and CI run it


def test_shipped_corpus_has_balanced_domains():
    corpus = demo_corpus()
    assert sorted(corpus) == ["electronics", "kitchen", "movies"]
    for texts, labels in corpus.values():
        assert len(texts) == 120 and labels.count("positive") == 60
        assert len(set(texts)) == 120


def test_demo_runs_the_pipeline_to_the_report(tiny_model, tmp_path, capsys):
    assert (
        main(["-q", "demo", "--out", str(tmp_path / "demo"), "--model", str(tiny_model), "--device", "cpu"])
        == 0
    )
    report = tmp_path / "demo" / "report" / "report.md"
    for domain in ("electronics", "kitchen", "movies"):
        store = neurosel.open_store(tmp_path / "demo" / "stores" / f"{domain}.zarr")
        assert store.complete and store.shape == (120, 3, 32)
        assert store.meta["label_names"] == ["negative", "positive"]
    results = json.loads((report.parent / "results.json").read_text())
    singles = [t for t in results["transfers"] if len(t["sources"]) == 1]
    multis = [t for t in results["transfers"] if len(t["sources"]) == 2]
    assert len(singles) == 12 and len(multis) == 6  # 6 ordered pairs and 3 leave-one-out, × 2 normalisations
    assert set(results["fingerprints"]) == {"electronics", "kitchen", "movies"}
    assert all(abs(sum(p) - 100) < 1e-9 for p in results["fingerprints"].values())
    control = results["correlation"]["control"]  # the label-free distance beside the fingerprints
    assert all(p["distance"] > 0 for p in results["correlation"]["pairs"])
    assert -1 <= control["spearman_closeness"] <= 1 and 0 < control["p_value_closeness"] <= 1
    assert "partial ρ" in report.read_text()
    assert (report.parent / "accuracy_vs_k.png").stat().st_size > 10_000
    out = capsys.readouterr().out
    assert f"report: {report.resolve()}" in out and "single-source" in out
    assert (
        run_demo(tmp_path / "demo", str(tiny_model), "cpu", progress=False) == report
    )  # resumes: all reused
