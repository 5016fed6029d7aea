"""The demo: the shipped corpus, one store per domain."""

from __future__ import annotations

import engine
from engine.demo import demo_corpus, run_demo


def test_shipped_corpus_has_balanced_domains():
    corpus = demo_corpus()
    assert sorted(corpus) == ["electronics", "kitchen", "movies"]
    for texts, labels in corpus.values():
        assert len(texts) == 120 and labels.count("positive") == 60
        assert len(set(texts)) == 120


def test_demo_writes_one_complete_store_per_domain(tiny_model, tmp_path, capsys):
    stores = run_demo(tmp_path / "demo", str(tiny_model), "cpu")
    assert sorted(stores) == ["electronics", "kitchen", "movies"]
    for domain in stores:
        store = engine.open_store(tmp_path / "demo" / f"{domain}.zarr")
        assert store.complete and store.shape == (120, 3, 32)
        assert store.meta["label_names"] == ["negative", "positive"]
    assert "demo stores written to" in capsys.readouterr().out
