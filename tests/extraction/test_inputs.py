"""Input readers: lists, pairs, CSV/TSV/JSONL/Parquet files, Arrow tables, label handling."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from neurosel.errors import InputError
from neurosel.extraction import load_corpus


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
    with pytest.raises(InputError, match=r"labels: row 1 has no label \(empty, None or NaN\)"):
        load_corpus(["a", "b"], labels=[1.0, float("nan")])
    with pytest.raises(InputError, match=r"mix numbers and words.*label_kind='class'"):
        load_corpus(["a", "b"], labels=[1, "x"])


def test_digest_depends_on_text_pairs_and_labels():
    base = load_corpus(["a", "b"], labels=[0, 1]).digest()
    assert base == load_corpus(["a", "b"], labels=[0, 1]).digest()
    assert base != load_corpus(["a", "b"], labels=[1, 0]).digest()
    assert base != load_corpus(["a b"], labels=[0]).digest()
    assert load_corpus([("a", "b")]).digest() != load_corpus(["a", "b"]).digest()


# --- CSV/TSV: a real parser over the whole text --------------------------------------------------


def write_rows(path: Path, rows: list[list[str]], delimiter: str = ",", lineterminator: str = "\r\n") -> Path:
    """Write with the csv module (quotes fields holding delimiters, quotes or line breaks)."""
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f, delimiter=delimiter, lineterminator=lineterminator).writerows(rows)
    return path


MULTILINE_ROWS = [
    ["text", "label"],
    ["line one\nline two, with a comma", "1"],
    ['she said "hi"\r\nthen left', "0"],
    ["plain", "1"],
    ["\n\nblank lines inside\n", "0"],
]


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_multiline_quoted_fields_are_one_field(tmp_path, suffix):
    delimiter = "\t" if suffix == ".tsv" else ","
    path = write_rows(tmp_path / f"d{suffix}", MULTILINE_ROWS, delimiter)
    corpus = load_corpus(path)
    assert corpus.texts == [row[0] for row in MULTILINE_ROWS[1:]]
    assert corpus.labels.tolist() == [1, 0, 1, 0]


def test_multiline_csv_reads_as_pandas_does(tmp_path):
    pd = pytest.importorskip("pandas")
    path = write_rows(tmp_path / "d.csv", MULTILINE_ROWS)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    corpus = load_corpus(path)
    assert corpus.texts == frame["text"].tolist()
    assert corpus.labels.tolist() == frame["label"].astype(int).tolist()


def test_crlf_file_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b'\xef\xbb\xbftext,label\r\ngood movie,pos\r\n"two\r\nlines",neg\r\n\r\nbad,neg\r\n')
    corpus = load_corpus(path)
    assert corpus.texts == ["good movie", "two\r\nlines", "bad"]
    assert corpus.label_names == ["neg", "pos"] and corpus.labels.tolist() == [1, 0, 0]


def test_a_10_mb_field_is_read_whole(tmp_path):
    big = ("word " * 2_000_000).strip()
    assert len(big) > 9_999_000
    path = write_rows(tmp_path / "d.csv", [["text", "label"], ["short", "0"], [big, "1"]])
    assert load_corpus(path).texts == ["short", big]


def test_ragged_row_is_named_by_the_line_it_starts_on(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('text,label\n"one\ntwo\nthree",1\nfine,0\nbad,0,extra\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"d\.csv: line 6 has 3 fields, the header 2"):
        load_corpus(path)


def test_unclosed_quote_is_refused_not_swallowed(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('text,label\ngood,1\n"never closed,0\nbad,0\nworse,1\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"d\.csv: line 3: malformed CSV .*never closed"):
        load_corpus(path)
    path.write_text('text,label\n"a"b,1\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"line 2: malformed CSV .*double the quotes"):
        load_corpus(path)


def test_duplicate_header_names_are_refused(tmp_path):
    path = write_rows(tmp_path / "d.csv", [["text", "label", "text"], ["a", "1", "b"]])
    with pytest.raises(InputError, match="column 'text' appears more than once"):
        load_corpus(path)


def test_non_utf8_files_name_the_encoding_line_byte_and_fix(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes("text,label\ngood,1\ncaf\u00e9,0\n".encode("latin-1"))
    with pytest.raises(
        InputError, match=r"not valid UTF-8 \(line 3, byte 21: 0xe9\).*iconv -f latin1 -t utf-8"
    ):
        load_corpus(path)
    path.write_bytes("text,label\ngood,1\n".encode("utf-16"))
    with pytest.raises(InputError, match=r"UTF-16.*not UTF-8.*iconv -f utf-16 -t utf-8"):
        load_corpus(path)


def test_jsonl_keeps_unicode_line_separators_inside_strings(tmp_path):
    path = tmp_path / "d.jsonl"
    rows = [{"text": "one\u2028two\x85three", "label": 1}, {"text": "b", "label": 0}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    assert load_corpus(path).texts == ["one\u2028two\x85three", "b"]


# --- labels read from files ----------------------------------------------------------------------


def test_empty_label_cells_are_refused_with_rows_and_lines(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('text,label\ngood,1\n"two\nlines",\nbad,0\nmeh,  \n', encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_corpus(path)
    message = str(info.value)
    assert message.startswith(f"{path} column 'label': rows 1, 3 (file lines 3, 6) have no label")
    assert "fill in those labels or drop those rows" in message and "\n" not in message


def test_many_missing_labels_show_the_first_few_and_a_count(tmp_path):
    rows = [["text", "label"]] + [[f"t{i}", "" if i % 2 else "1"] for i in range(20)]
    path = write_rows(tmp_path / "d.csv", rows, lineterminator="\n")
    with pytest.raises(
        InputError, match=r"rows 1, 3, 5, 7, 9, \.\.\. \(10 in all; file lines 3, 5, 7, 9, 11, \.\.\.\)"
    ):
        load_corpus(path)


def test_nan_label_cells_are_missing(tmp_path):
    path = write_rows(tmp_path / "d.csv", [["text", "label"], ["a", "0.5"], ["b", "NaN"]])
    with pytest.raises(InputError, match=r"row 1 \(file line 3\) has no label"):
        load_corpus(path)


def test_labels_mixing_numbers_and_words_need_label_kind_class(tmp_path):
    path = write_rows(tmp_path / "d.csv", [["text", "label"], ["a", "1"], ["b", "0"], ["c", "pos"]])
    with pytest.raises(
        InputError, match=r"column 'label': labels mix numbers and words: row 2 \(file line 4\)"
    ):
        load_corpus(path)
    corpus = load_corpus(path, label_kind="class")
    assert corpus.label_names == ["0", "1", "pos"] and corpus.labels.tolist() == [1, 0, 2]
    assert corpus.label_kind == "class"


def test_label_kind_numeric_and_class_on_integer_cells(tmp_path):
    path = write_rows(tmp_path / "d.csv", [["text", "stars"], ["a", "5"], ["b", "1"], ["c", "3"]])
    numeric = load_corpus(path, label_column="stars", label_kind="numeric")
    assert numeric.labels.dtype == np.float64 and numeric.labels.tolist() == [5.0, 1.0, 3.0]
    assert numeric.label_kind == "numeric" and numeric.label_names is None
    auto = load_corpus(path, label_column="stars")
    assert auto.labels.dtype == np.int64 and auto.labels.tolist() == [5, 1, 3] and auto.label_names is None
    assert auto.digest() != numeric.digest()
    with pytest.raises(InputError, match="label_kind 'regression': unknown"):
        load_corpus(path, label_kind="regression")


def test_null_labels_in_jsonl_parquet_and_arrow(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text(
        '{"text": "a", "label": 1}\n\n{"text": "b"}\n{"text": "c", "label": null}\n', encoding="utf-8"
    )
    with pytest.raises(InputError, match=r"column 'label': rows 1, 2 \(file lines 3, 4\) have no label"):
        load_corpus(jsonl)
    table = pa.table({"text": ["a", "b", "c"], "label": ["pos", None, "neg"]})
    pq.write_table(table, tmp_path / "d.parquet")
    with pytest.raises(InputError, match=r"d\.parquet column 'label': row 1 has no label"):
        load_corpus(tmp_path / "d.parquet")
    with pytest.raises(InputError, match=r"Table column 'label': row 1 has no label"):
        load_corpus(table)


def test_empty_texts_name_every_row_and_its_line(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('text,label\n"",1\ngood,0\n"  ",1\n', encoding="utf-8")
    with pytest.raises(
        InputError, match=r"column 'text': rows 0, 2 \(file lines 2, 4\) are empty or whitespace"
    ):
        load_corpus(path)
    with pytest.raises(InputError, match=r"mapping column 'text': row 1 has no text; fill or drop it"):
        load_corpus({"text": ["a", None]})


# --- through the CLI: one line, exit 2, nothing marked complete -----------------------------------


@pytest.mark.parametrize(
    ("cells", "needles"),
    [
        (["1", "", "0"], ["column 'label'", "row 1 (file line 3) has no label", "fill in"]),
        (["1", "0", "pos"], ["labels mix numbers and words", "row 2 (file line 4)", "--label-kind class"]),
    ],
)
def test_cli_refuses_bad_label_cells_and_writes_nothing(capsys, tiny_model, tmp_path, cells, needles):
    from neurosel.cli import main

    rows = [["text", "label"]] + [[f"good movie {i}", c] for i, c in enumerate(cells)]
    data = write_rows(tmp_path / "d.csv", rows)
    out = tmp_path / "o.zarr"
    code = main(["--quiet", "extract", str(data), "--model", str(tiny_model), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert str(data) in err
    for needle in needles:
        assert needle in err, err
    assert not out.exists()


def test_bad_labels_leave_an_existing_store_as_it_was(tiny_model, tmp_path):
    import neurosel

    out = tmp_path / "o.zarr"
    neurosel.extract(["good", "bad"], str(tiny_model), out, labels=[1, 0], device="cpu", progress=False)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    for bad in ([1, None], ["1", "x"]):
        with pytest.raises(InputError):
            neurosel.extract(["good", "bad"], str(tiny_model), out, labels=bad, device="cpu", progress=False)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert neurosel.open_store(out).complete


@pytest.mark.parametrize("chunk_rows", [0, -3, 2.5, True])
def test_extract_refuses_chunk_rows_below_one_before_writing(tiny_model, tmp_path, chunk_rows):
    import neurosel

    out = tmp_path / "o.zarr"
    with pytest.raises(InputError, match=r"chunk_rows .*: must be a whole number ≥ 1"):
        neurosel.extract(
            ["a", "b"], str(tiny_model), out, chunk_rows=chunk_rows, device="cpu", progress=False
        )
    assert not out.exists()


def test_extract_label_kind_class_is_stored(tiny_model, tmp_path):
    import neurosel

    store = neurosel.extract(
        ["good", "bad", "fun"],
        str(tiny_model),
        tmp_path / "o.zarr",
        labels=[1, "neg", 1],
        label_kind="class",
        device="cpu",
        progress=False,
    )
    assert store.complete and store.meta["label_kind"] == "class"
    assert store.meta["label_names"] == ["1", "neg"] and store.labels.tolist() == [0, 1, 0]


def test_a_lone_surrogate_in_jsonl_is_named_not_a_traceback(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "fine", "label": 0}\n{"text": "bad \\udc80 text", "label": 1}\n')
    with pytest.raises(InputError, match=r"row 1 \(file line 2\) has a lone surrogate"):
        load_corpus(str(path))
