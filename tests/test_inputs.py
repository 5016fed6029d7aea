"""Input readers: lists, pairs, CSV/TSV/JSONL/Parquet files, Arrow tables, label handling."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.errors import InputError
from engine.extraction import load_corpus


def test_list_of_strings_and_pairs():
    corpus = load_corpus(["a b", "c"], labels=[1, 0])
    assert corpus.texts == ["a b", "c"] and corpus.pairs is None
    assert corpus.labels.dtype == np.int64
    pairs = load_corpus([("a", "b"), ("c", "d")])
    assert pairs.texts == ["a", "c"] and pairs.pairs == ["b", "d"]


def test_mixed_list_is_refused():
    with pytest.raises(InputError, match="mix of types"):
        load_corpus(["a", ("b", "c")])


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_table_formats_agree(tmp_path, suffix):
    rows = [
        {"sentence": 'good, really "good"', "other": "x", "score": 1.5},
        {"sentence": "bad", "other": "y", "score": 0.25},
    ]
    path = tmp_path / f"d{suffix}"
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        import csv

        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="\t" if suffix == ".tsv" else ",")
            writer.writeheader()
            writer.writerows(rows)
    corpus = load_corpus(path, text_column="sentence", pair_column="other", label_column="score")
    assert corpus.texts == ['good, really "good"', "bad"] and corpus.pairs == ["x", "y"]
    np.testing.assert_array_equal(corpus.labels, [1.5, 0.25])
    assert corpus.labels.dtype == np.float64


def test_arrow_table_input():
    import pyarrow as pa

    corpus = load_corpus(pa.table({"text": ["a", "b"], "label": ["neg", "pos"]}))
    assert corpus.texts == ["a", "b"] and list(corpus.labels) == [0, 1]
    assert corpus.label_names == ["neg", "pos"]


def test_huggingface_dataset_input():
    datasets = pytest.importorskip("datasets")
    corpus = load_corpus(datasets.Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]}))
    assert corpus.texts == ["a", "b"] and list(corpus.labels) == [0, 1]


def test_numeric_strings_in_csv_become_numbers(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\na,1\nb,0\n", encoding="utf-8")
    assert load_corpus(path).labels.tolist() == [1, 0]


def test_missing_default_label_column_means_unlabelled(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text\na\n", encoding="utf-8")
    assert load_corpus(path).labels is None
    with pytest.raises(InputError, match="no column 'y'"):
        load_corpus(path, label_column="y")


def test_malformed_lines_are_named(tmp_path):
    bad_json = tmp_path / "d.jsonl"
    bad_json.write_text('{"text": "a"}\n{"text": \n', encoding="utf-8")
    with pytest.raises(InputError, match="line 2 is not valid JSON"):
        load_corpus(bad_json)
    bad_csv = tmp_path / "d.csv"
    bad_csv.write_text("text,label\na,1\nb,0,extra\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 3 has 3 fields"):
        load_corpus(bad_csv)


def test_bad_labels():
    with pytest.raises(InputError, match="row 1 is missing or not finite"):
        load_corpus(["a", "b"], labels=[1.0, float("nan")])
    with pytest.raises(InputError, match="mix numbers"):
        load_corpus(["a", "b"], labels=[1, "x"])


def test_digest_depends_on_text_pairs_and_labels():
    base = load_corpus(["a", "b"], labels=[0, 1]).digest()
    assert base == load_corpus(["a", "b"], labels=[0, 1]).digest()
    assert base != load_corpus(["a", "b"], labels=[1, 0]).digest()
    assert base != load_corpus(["a b"], labels=[0]).digest()
    assert load_corpus([("a", "b")]).digest() != load_corpus(["a", "b"]).digest()
