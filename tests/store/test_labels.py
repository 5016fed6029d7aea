"""The label rule (docs/inputs.md): check_labels under label_kind auto/class/numeric, and
store_from_array refusing what no pass could use, before anything is written."""

from __future__ import annotations

import numpy as np
import pytest

import neurosel
from neurosel.errors import InputError
from neurosel.store import check_labels


def ids(labels, kind="auto", where="labels"):
    array, names = check_labels(labels, len(labels), where, label_kind=kind)
    return array.tolist(), array.dtype, names


# --- "auto": the rule for consistent inputs, unchanged ---------------------------------------------


@pytest.mark.parametrize(
    ("labels", "expected", "dtype", "names"),
    [
        ([1, 0, 2], [1, 0, 2], np.int64, None),
        (["1", "0", "1"], [1, 0, 1], np.int64, None),  # CSV cells
        ([" 2 ", "0"], [2, 0], np.int64, None),
        (np.array([3, 1]), [3, 1], np.int64, None),
        (np.array([1, 0], dtype=np.uint8), [1, 0], np.int64, None),
        ([np.int64(1), np.int32(0)], [1, 0], np.int64, None),
        ([True, False], [1, 0], np.int64, None),
        (np.array([True, False]), [1, 0], np.int64, None),
        ([1.5, 2], [1.5, 2.0], np.float64, None),
        ([1.0, 0.0], [1.0, 0.0], np.float64, None),  # floats are numeric targets, even when whole
        (["1.0", "0"], [1.0, 0.0], np.float64, None),
        (["0.25", "-3e2"], [0.25, -300.0], np.float64, None),
        (np.array([0.5, 1.0], dtype=np.float32), [0.5, 1.0], np.float64, None),
        (["pos", "neg", "pos"], [1, 0, 1], np.int64, ["neg", "pos"]),
        (np.array(["b", "a"]), [1, 0], np.int64, ["a", "b"]),
        (["NA", "null"], [0, 1], np.int64, ["NA", "null"]),  # words, not missing values
    ],
)
def test_auto_rule_for_consistent_labels(labels, expected, dtype, names):
    assert ids(labels) == (expected, dtype, names)


def test_no_labels_and_wrong_length():
    assert check_labels(None, 3, "labels") == (None, None)
    with pytest.raises(InputError, match="labels: 3 labels for 2 texts; pass one label per text"):
        check_labels([0, 1, 1], 2, "labels")
    with pytest.raises(InputError, match="3 labels for 2 texts"):
        check_labels(np.array([0, 1, 1]), 2, "labels")
    with pytest.raises(InputError, match=r"shape \(2, 2\); pass one label per text"):
        check_labels(np.zeros((2, 2)), 2, "labels")
    with pytest.raises(InputError, match="one string, not a label per text"):
        check_labels("ab", 2, "labels")


# --- missing values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "missing", [None, "", "   ", "\t", float("nan"), np.nan, np.float32("nan"), "nan", "NaN"]
)
@pytest.mark.parametrize("kind", ["auto", "class", "numeric"])
def test_missing_labels_are_refused_under_every_kind(missing, kind):
    good = "1" if kind == "numeric" else "pos"
    with pytest.raises(
        InputError, match=r"^d\.csv column 'y': row 1 has no label \(empty, None or NaN\); fill"
    ):
        check_labels([good, missing, good], 3, "d.csv column 'y'", label_kind=kind)


def test_nan_in_a_float_array_and_pandas_na():
    with pytest.raises(InputError, match=r"rows 0, 2 have no label \(NaN\)"):
        check_labels(np.array([np.nan, 1.0, np.nan]), 3, "labels")
    pd = pytest.importorskip("pandas")
    with pytest.raises(InputError, match="row 1 has no label"):
        check_labels(pd.Series(["a", pd.NA], dtype="string"), 2, "labels")


def test_many_missing_rows_are_shown_first_few_then_a_count():
    labels = ["a", None] * 8
    with pytest.raises(InputError) as info:
        check_labels(labels, 16, "labels", lines=[10 + 2 * i for i in range(16)])
    assert "rows 1, 3, 5, 7, 9, ... (8 in all; file lines 12, 16, 20, 24, 28, ...) have no label" in str(
        info.value
    )


def test_infinite_labels_are_refused():
    with pytest.raises(InputError, match="the label of row 1 is infinite"):
        check_labels([0.5, float("inf")], 2, "labels")
    with pytest.raises(InputError, match="the label of row 0 is infinite"):
        check_labels(["-inf", "1"], 2, "labels")


def test_values_that_are_not_labels():
    with pytest.raises(InputError, match=r"rows 0, 1 are list, not a label; use numbers or strings"):
        check_labels([[1], [0]], 2, "labels")
    with pytest.raises(InputError, match="row 1 is bytes"):
        check_labels(["a", b"b"], 2, "labels")
    with pytest.raises(InputError, match="class ids beyond int64"):
        check_labels([2**70, 1], 2, "labels")


# --- numbers mixed with words --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "needle"),
    [
        (["1", "0", "pos"], "row 2 is a word ('pos'), the other 2 are numbers (e.g. '1')"),
        ([1, "neg"], "row 1 is a word ('neg'), the other 1 is a number (e.g. 1)"),
        (["a", "b", "c", "7"], "row 3 is a number ('7'), the other 3 are words (e.g. 'a')"),
        ([0.5, "x", "y", 1.5], "rows 1, 2 are words ('x', 'y')"),
    ],
)
def test_numbers_mixed_with_words_are_refused_under_auto(labels, needle):
    with pytest.raises(InputError) as info:
        check_labels(labels, len(labels), "labels")
    message = str(info.value)
    assert message.startswith("labels: labels mix numbers and words: ")
    assert needle in message
    assert "pass label_kind='class' (--label-kind class)" in message and "\n" not in message


def test_label_kind_class_makes_every_label_a_class_name():
    assert ids(["1", "0", "pos"], "class") == ([1, 0, 2], np.int64, ["0", "1", "pos"])
    assert ids([1, "neg", 1], "class") == ([0, 1, 0], np.int64, ["1", "neg"])
    assert ids([1.0, 2.5], "class") == ([0, 1], np.int64, ["1", "2.5"])
    assert ids([True, False], "class") == ([1, 0], np.int64, ["False", "True"])
    assert ids(np.array([3, 1, 3]), "class") == ([1, 0, 1], np.int64, ["1", "3"])
    assert ids(["2", "10"], "class") == ([1, 0], np.int64, ["10", "2"])  # names sort as strings


def test_label_kind_numeric_makes_float_targets_and_refuses_words():
    assert ids([5, 1, 3], "numeric") == ([5.0, 1.0, 3.0], np.float64, None)
    assert ids(["5", "2.5"], "numeric") == ([5.0, 2.5], np.float64, None)
    assert ids(np.array([1, 0]), "numeric") == ([1.0, 0.0], np.float64, None)
    with pytest.raises(InputError, match=r"rows 1, 2 are not a number \('x', 'y'\); fix them, or pass"):
        check_labels([1, "x", "y"], 3, "labels", label_kind="numeric")
    with pytest.raises(InputError, match="the label of row 0 is infinite"):
        check_labels(np.array([np.inf, 1.0]), 2, "labels", label_kind="numeric")


def test_unknown_label_kind_is_refused_even_without_labels():
    with pytest.raises(InputError, match="label_kind 'str': unknown; use one of auto, class, numeric"):
        check_labels(None, 2, "labels", label_kind="str")


def test_load_corpus_passes_label_kind():
    from neurosel.extraction import load_corpus

    with pytest.raises(InputError, match="labels mix numbers and words"):
        load_corpus(["a", "b"], labels=["1", "pos"])
    corpus = load_corpus(["a", "b"], labels=["1", "pos"], label_kind="class")
    assert corpus.label_names == ["1", "pos"] and corpus.label_kind == "class"


# --- store_from_array ----------------------------------------------------------------------------


def assert_nothing_written(out):
    assert not out.exists()


@pytest.mark.parametrize(
    ("activations", "needle"),
    [
        (np.zeros((0, 2, 3), np.float32), r"shape \(0, 2, 3\) holds nothing"),
        (np.zeros((4, 2, 0), np.float32), r"shape \(4, 2, 0\) holds nothing"),
        (np.full((4, 2, 3), np.nan, np.float32), "all 24 values are NaN or infinite"),
        (np.full((4, 2, 3), np.inf), "all 24 values are NaN or infinite"),
        (np.zeros((4, 6)), r"shape \(4, 6\); pass \(examples, layers, hidden\)"),
        (np.zeros((4, 2, 3), dtype=complex), "dtype complex128; pass real numbers"),
    ],
)
def test_store_from_array_refuses_what_no_pass_could_use(tmp_path, activations, needle):
    out = tmp_path / "s.zarr"
    with pytest.raises(InputError, match=f"^activations: .*{needle}"):
        neurosel.store_from_array(out, activations)
    assert_nothing_written(out)


def test_all_nan_is_refused_past_the_first_block(tmp_path):
    from neurosel.store._from_array import _check_some_finite

    x = np.full((10, 1, 2), np.nan)
    with pytest.raises(InputError, match="all 20 values"):
        _check_some_finite(x, rows_per_look=3)
    x[9, 0, 1] = 1.0
    _check_some_finite(x, rows_per_look=3)


@pytest.mark.parametrize("chunk_rows", [0, -1, 2.5, True, "8"])
def test_store_from_array_refuses_chunk_rows_below_one(tmp_path, chunk_rows):
    out = tmp_path / "s.zarr"
    with pytest.raises(InputError, match=r"chunk_rows .*: must be a whole number ≥ 1"):
        neurosel.store_from_array(out, np.ones((4, 1, 2)), chunk_rows=chunk_rows)
    assert_nothing_written(out)


def test_store_from_array_accepts_numpy_chunk_rows_and_partly_nan_rows(tmp_path):
    x = np.ones((6, 1, 2), np.float32)
    x[2, 0, 1] = np.nan
    store = neurosel.store_from_array(tmp_path / "s.zarr", x, chunk_rows=np.int64(2))
    assert store.complete and store.meta["chunk_rows"] == 2 and store.meta["nonfinite_rows"] == [2]


@pytest.mark.parametrize(
    ("labels", "needle"),
    [
        (["pos", "", "neg", "pos"], r"labels: row 1 has no label"),
        ([1, 0, None, 1], r"labels: row 2 has no label"),
        (np.array([0.5, np.nan, 1.0, 2.0]), r"labels: row 1 has no label \(NaN\)"),
        (["1", "0", "pos", "1"], r"labels: labels mix numbers and words"),
    ],
)
def test_store_from_array_refuses_bad_labels_before_writing(tmp_path, labels, needle):
    out = tmp_path / "s.zarr"
    with pytest.raises(InputError, match=needle):
        neurosel.store_from_array(out, np.ones((4, 1, 2)), labels=labels)
    assert_nothing_written(out)


def test_store_from_array_label_kind(tmp_path):
    x = np.ones((4, 1, 2))
    store = neurosel.store_from_array(
        tmp_path / "c.zarr", x, labels=["1", "0", "pos", "1"], label_kind="class"
    )
    assert store.meta["label_kind"] == "class" and store.meta["label_names"] == ["0", "1", "pos"]
    assert store.labels.tolist() == [1, 0, 2, 1]
    store = neurosel.store_from_array(tmp_path / "n.zarr", x, labels=[1, 2, 3, 4], label_kind="numeric")
    assert store.meta["label_kind"] == "numeric" and store.labels.dtype == np.float64


def test_a_failed_store_from_array_leaves_an_existing_store_alone(tmp_path):
    out = tmp_path / "s.zarr"
    neurosel.store_from_array(out, np.ones((4, 1, 2)), labels=[0, 1, 0, 1])
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(InputError):
        neurosel.store_from_array(out, np.full((4, 1, 2), np.nan), labels=[0, 1, 0, 1])
    with pytest.raises(InputError):
        neurosel.store_from_array(out, np.ones((4, 1, 2)), labels=[0, 1, "", 1])
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert neurosel.open_store(out).complete
