"""Dataset readers: inline samples of every format (good and malformed), then the real shared datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neurosel.errors import InputError
from neurosel.experiments import (
    EXPERIMENTS,
    Domain,
    read_amazon,
    read_cr,
    read_domain,
    read_mr,
    read_sick,
    read_sst2,
    read_stsb,
    subsample,
)
from neurosel.extraction import load_corpus

SICK_HEADER = "pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\n"


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def review(text: str | None, title: str | None = "A title") -> str:
    title_tag = f"<title>\n{title}\n</title>\n" if title is not None else ""
    text_tag = f"<review_text>\n{text}\n</review_text>\n" if text is not None else ""
    return f"<review>\n<rating>\n5.0\n</rating>\n{title_tag}{text_tag}</review>\n"


def write_amazon(root: Path, positive: str, negative: str, domain: str = "books") -> Path:
    write(root / "amazon_multidomain_blitzer2007" / domain / "positive.review", positive)
    write(root / "amazon_multidomain_blitzer2007" / domain / "negative.review", negative)
    return root


def stsb_row(genre: str, score: str, a: str, b: str, extra: int = 0) -> str:
    return "\t".join([genre, "src", "2012", "0001", score, a, b] + ["licence"] * extra) + "\n"


# Amazon


def test_amazon_title_and_text_with_labels(tmp_path):
    positive = (
        "<reviews>\n" + review("Loved it &amp; more.", "Great") + review("Fine &quot;really&quot;", "Wow!")
    )
    negative = review("Fell apart.  ", title="") + review("Too slow", title=None) + "</reviews>\n"
    domain = read_amazon("books", write_amazon(tmp_path, positive, negative))
    assert (domain.name, domain.label_names) == ("books", ("negative", "positive"))
    assert domain.texts == [
        "Great. Loved it & more.",
        'Wow! Fine "really"',
        "Fell apart.",
        "Too slow",
    ]
    np.testing.assert_array_equal(domain.labels, [1, 1, 0, 0])


def test_amazon_keeps_an_ampersand_that_is_no_entity(tmp_path):
    domain = read_amazon("books", write_amazon(tmp_path, review("AT&T &notation"), review("bad")))
    assert domain.texts[0] == "A title. AT&T &notation"


@pytest.mark.parametrize(
    ("negative", "line", "needle"),
    [
        (review("ok") + review(None), 12, "no <review_text>"),
        (review("ok") + review("   "), 12, "empty <review_text>"),
        (review("ok") + "<review>\n<title>\nx\n</title>\n", 12, "<review> has no </review>"),
        (review("ok") + "<review>\n" + review("nested"), 12, "not closed before the next"),
        (review("ok") + "</review>\n" + review("x"), 12, "</review> has no <review>"),
    ],
)
def test_amazon_malformed_block_names_file_and_line(tmp_path, negative, line, needle):
    write_amazon(tmp_path, review("good"), negative)
    with pytest.raises(InputError, match=needle) as err:
        read_amazon("books", tmp_path)
    assert f"negative.review: line {line}:" in str(err.value)


def test_amazon_missing_file_says_which_data_dir(tmp_path):
    write(tmp_path / "amazon_multidomain_blitzer2007" / "books" / "positive.review", review("ok"))
    with pytest.raises(InputError, match=r"negative\.review: no such file.*--data-dir"):
        read_amazon("books", tmp_path)
    with pytest.raises(InputError, match=r"nowhere: no such directory.*--data-dir"):
        read_amazon("books", tmp_path / "nowhere")


def test_amazon_unknown_domain(tmp_path):
    with pytest.raises(InputError, match=r"'toys'.*books, dvd, electronics, kitchen"):
        read_amazon("toys", tmp_path)


# <label> <sentence> files


def write_sentences(root: Path, name: str, content: str | bytes) -> Path:
    write(root / "sst2_mr_cr" / name, content)
    return root


def test_sst2_splits_in_order(tmp_path):
    write_sentences(tmp_path, "stsa.binary.train", "1 a fine film\n0 dull .\n")
    write_sentences(tmp_path, "stsa.binary.dev", "0 crème brûlée gone bad\n")
    write_sentences(tmp_path, "stsa.binary.test", "\n1 lovely\n\n")
    domain = read_sst2(tmp_path)
    assert domain.texts == ["a fine film", "dull .", "crème brûlée gone bad", "lovely"]
    np.testing.assert_array_equal(domain.labels, [1, 0, 0, 1])
    assert domain.labels.dtype == np.int64
    assert read_sst2(tmp_path, splits=("test", "dev")).texts == ["lovely", "crème brûlée gone bad"]


@pytest.mark.parametrize("splits", ["train", (), ("valid",)])
def test_sst2_bad_splits(tmp_path, splits):
    with pytest.raises(InputError, match="train, dev, test"):
        read_sst2(tmp_path, splits=splits)


@pytest.mark.parametrize(
    ("line", "needle"), [("pos great film", "label 'pos'"), ("2 great", "label '2'"), ("1  ", "no sentence")]
)
def test_malformed_sentence_line_names_file_and_line(tmp_path, line, needle):
    write_sentences(tmp_path, "stsa.binary.train", f"1 fine\n0 bad\n{line}\n")
    with pytest.raises(InputError, match=needle) as err:
        read_sst2(tmp_path, splits=("train",))
    assert "stsa.binary.train: line 3:" in str(err.value)


def test_mr_decodes_windows_1252_without_splitting_lines(tmp_path):
    content = "0 the action clich\xe9s pile up \n1 \x85a quiet \x91gem\x92 \x97 really \n".encode(
        "latin-1"
    )  # the bytes of cp1252 … ‘ ’ —
    domain = read_mr(write_sentences(tmp_path, "rt-polarity.all", content))
    assert domain.texts == ["the action clichés pile up", "…a quiet ‘gem’ — really"]
    np.testing.assert_array_equal(domain.labels, [0, 1])


def test_invalid_utf8_names_the_line(tmp_path):
    write_sentences(tmp_path, "custrev.all", b"1 fine\n0 caf\xe9 noise\n")
    with pytest.raises(InputError, match=r"custrev\.all: line 2: not valid utf-8"):
        read_cr(tmp_path)


def test_cr_drops_labelled_lines_without_a_sentence(tmp_path):
    domain = read_cr(write_sentences(tmp_path, "custrev.all", "1 works well\n0 \n0 broke\n1 \n"))
    assert domain.texts == ["works well", "broke"]
    np.testing.assert_array_equal(domain.labels, [1, 0])


# SICK


def write_sick(root: Path, rows: str, split_file: str = "SICK_train.txt", header: str = SICK_HEADER) -> Path:
    write(root / "sick2014" / split_file, header + rows)
    return root


def test_sick_entailment_classes_and_relatedness(tmp_path):
    rows = (
        "1\tA man plays\tA person plays \t4.5\tENTAILMENT\r\n"
        "2\tA dog runs\tA cat sleeps\t1.2\tNEUTRAL\r\n"
        "3\tA boy sits\tNo boy sits\t3.6\tCONTRADICTION\r\n"
    )
    write_sick(tmp_path, rows, "SICK_test_annotated.txt", SICK_HEADER.replace("\n", "\r\n"))
    classes = read_sick("test", tmp_path)
    assert classes.name == "test"
    assert classes.texts[0] == ("A man plays", "A person plays")
    np.testing.assert_array_equal(classes.labels, [0, 1, 2])
    assert classes.label_names == ("ENTAILMENT", "NEUTRAL", "CONTRADICTION")
    scores = read_sick("test", tmp_path, label="relatedness")
    np.testing.assert_allclose(scores.labels, [4.5, 1.2, 3.6])
    assert scores.labels.dtype == np.float64
    assert scores.label_names is None


@pytest.mark.parametrize(
    ("row", "needle"),
    [
        ("2\tA dog runs\t1.2\tNEUTRAL\n", "4 tab-separated fields, expected 5"),
        ("2\tA dog runs\tA cat\t1.2\tMAYBE\n", "entailment label 'MAYBE'"),
        ("2\tA dog runs\t \t1.2\tNEUTRAL\n", "sentence of the pair is empty"),
    ],
)
def test_sick_malformed_row_names_file_and_line(tmp_path, row, needle):
    write_sick(tmp_path, "1\tA man plays\tA person plays\t4.5\tENTAILMENT\n" + row)
    with pytest.raises(InputError, match=needle) as err:
        read_sick("train", tmp_path)
    assert "SICK_train.txt: line 3:" in str(err.value)


def test_sick_bad_score_and_header(tmp_path):
    write_sick(tmp_path, "1\tA man plays\tA person plays\tnan\tENTAILMENT\n")
    with pytest.raises(InputError, match=r"SICK_train\.txt: line 2: score 'nan' is not a number"):
        read_sick("train", tmp_path, label="relatedness")
    write_sick(tmp_path, "1\ta\tb\t4.5\tNEUTRAL\n", header="id\ta\tb\n")
    with pytest.raises(InputError, match=r"SICK_train\.txt: line 1: header is not pair_ID"):
        read_sick("train", tmp_path)


def test_sick_unknown_label_option(tmp_path):
    with pytest.raises(InputError, match=r"sick label 'score'.*entailment, relatedness"):
        read_sick("train", tmp_path, label="score")


# STS Benchmark


def write_stsb(root: Path, train: str, dev: str = "", test: str = "") -> Path:
    for split, rows in (("train", train), ("dev", dev), ("test", test)):
        write(root / "stsb" / f"sts-{split}.csv", rows)
    return root


def test_stsb_merges_forum_spellings_and_takes_extra_columns(tmp_path):
    write_stsb(
        tmp_path,
        stsb_row("main-forum", "2.500", 'he said "no', "she 'left'")
        + stsb_row("main-news", "4", "a", "b", 2),
        dev=stsb_row("main-forums", "1.0", " x ", "y", extra=2),
        test=stsb_row("main-captions", "5.000", "c", "d"),
    )
    forums = read_stsb("forums", tmp_path)
    assert forums.texts == [('he said "no', "she 'left'"), ("x", "y")]
    np.testing.assert_allclose(forums.labels, [2.5, 1.0])
    assert forums.label_names is None
    binary = read_stsb("forums", tmp_path, threshold=2.5)
    np.testing.assert_array_equal(binary.labels, [1, 0])
    assert binary.labels.dtype == np.int64
    assert binary.label_names == ("dissimilar", "similar")
    assert read_stsb("news", tmp_path).texts == [("a", "b")]
    assert read_stsb("forums", tmp_path, splits=("dev",)).texts == [("x", "y")]


@pytest.mark.parametrize(
    ("row", "needle"),
    [
        ("main-news\tsrc\t2012\t0002\t3.0\tonly one\n", "6 tab-separated fields, expected at least 7"),
        (stsb_row("main-news", "high", "a", "b"), "score 'high' is not a number"),
        (stsb_row("main-blogs", "1.0", "a", "b"), "genre 'main-blogs'"),
    ],
)
def test_stsb_malformed_row_names_file_and_line(tmp_path, row, needle):
    write_stsb(tmp_path, stsb_row("main-news", "1.0", "a", "b"), dev="\n" + row)
    with pytest.raises(InputError, match=needle) as err:
        read_stsb("news", tmp_path)
    assert "sts-dev.csv: line 2:" in str(err.value)


def test_files_without_records(tmp_path):
    write_amazon(tmp_path, "<reviews>\n</reviews>\n", review("bad"))
    with pytest.raises(InputError, match=r"positive\.review: no <review> blocks"):
        read_amazon("books", tmp_path)
    write_sentences(tmp_path, "custrev.all", "\n\n")
    with pytest.raises(InputError, match=r"custrev\.all: no `<label> <sentence>` lines"):
        read_cr(tmp_path)
    write_sick(tmp_path, "")
    with pytest.raises(InputError, match=r"SICK_train\.txt: no rows after the header"):
        read_sick("train", tmp_path)
    write_stsb(tmp_path, stsb_row("main-news", "1.0", "a", "b"))
    with pytest.raises(InputError, match="stsb: no forums rows in the train, dev, test files"):
        read_stsb("forums", tmp_path)


# read_domain and subsampling


def test_read_domain_dispatches_and_passes_options(tmp_path):
    write_sentences(tmp_path, "stsa.binary.dev", "1 good\n0 bad\n")
    domain = read_domain("sst-cr", "sst2", tmp_path, splits=("dev",))
    assert (domain.name, domain.texts) == ("sst2", ["good", "bad"])


@pytest.mark.parametrize(
    ("experiment", "domain", "needle"),
    [("imdb", "books", "experiment 'imdb'.*amazon, sst-cr, sick, stsb"), ("amazon", "mr", "books, dvd")],
)
def test_read_domain_unknown_names(tmp_path, experiment, domain, needle):
    with pytest.raises(InputError, match=needle):
        read_domain(experiment, domain, tmp_path)


def class_domain(n_pos: int, n_neg: int) -> Domain:
    labels = np.array([1] * n_pos + [0] * n_neg, dtype=np.int64)
    return Domain("toy", [f"text {i}" for i in range(labels.size)], labels, ("negative", "positive"))


def test_subsample_is_balanced_seeded_and_in_file_order():
    domain = class_domain(50, 10)
    small = subsample(domain, max_per_class=8, seed=3)
    np.testing.assert_array_equal(np.bincount(small.labels), [8, 8])
    rows = [int(t.split()[1]) for t in small.texts]
    assert rows == sorted(rows)
    assert subsample(domain, max_per_class=8, seed=3).texts == small.texts
    assert subsample(domain, max_per_class=8, seed=4).texts != small.texts
    assert len(subsample(domain, max_per_class=8, limit=5)) == 5
    assert len(subsample(domain, max_per_class=100)) == 60


def test_subsample_numeric_labels_take_a_limit_only():
    domain = Domain("scores", [("a", "b")] * 10, np.linspace(0, 5, 10), None)
    assert len(subsample(domain, limit=4)) == 4
    with pytest.raises(InputError, match="numeric labels; use limit"):
        subsample(domain, max_per_class=2)
    with pytest.raises(InputError, match="limit=0: must be at least 1"):
        subsample(domain, limit=0)


def test_read_domain_subsamples(tmp_path):
    write_sentences(tmp_path, "custrev.all", "".join(f"{i % 2} sentence {i}\n" for i in range(20)))
    domain = read_domain("sst-cr", "cr", tmp_path, max_per_class=3, seed=1)
    np.testing.assert_array_equal(np.bincount(domain.labels), [3, 3])


@pytest.mark.parametrize(
    "domain",
    [
        class_domain(2, 1),
        Domain("pairs", [("a", "b"), ("c", "d")], np.array([0.5, 4.0]), None),
    ],
)
def test_domains_are_accepted_by_load_corpus(domain):
    corpus = load_corpus(domain.texts, labels=domain.labels)
    assert corpus.labels.dtype == domain.labels.dtype
    assert (corpus.pairs is not None) == isinstance(domain.texts[0], tuple)


# The real datasets (skipped without ../shared/datasets)


@pytest.mark.parametrize("name", EXPERIMENTS["amazon"])
def test_real_amazon(datasets_dir, name):
    domain = read_domain("amazon", name, datasets_dir)
    np.testing.assert_array_equal(np.bincount(domain.labels), [1000, 1000])
    assert all(text.strip() for text in domain.texts)
    assert any('"' in text for text in domain.texts)


@pytest.mark.parametrize(
    ("split", "counts"), [("train", [3310, 3610]), ("dev", [428, 444]), ("test", [912, 909])]
)
def test_real_sst2_splits(datasets_dir, split, counts):
    domain = read_sst2(datasets_dir, splits=(split,))
    np.testing.assert_array_equal(np.bincount(domain.labels), counts)
    assert all(domain.texts)


def test_real_sst_cr_domains(datasets_dir):
    counts = {"sst2": [4650, 4963], "mr": [5331, 5331], "cr": [1366, 2405]}  # CR: 4 empty lines dropped
    for name, expected in counts.items():
        domain = read_domain("sst-cr", name, datasets_dir)
        np.testing.assert_array_equal(np.bincount(domain.labels), expected)
        assert all(domain.texts)
    mr = read_mr(datasets_dir).texts
    assert sum("é" in t for t in mr) > 50
    assert not any("\x85" in t for t in mr)


@pytest.mark.parametrize(("split", "n"), [("train", 4500), ("trial", 500), ("test", 4927)])
def test_real_sick(datasets_dir, split, n):
    domain = read_domain("sick", split, datasets_dir)
    assert len(domain) == n
    assert set(domain.labels.tolist()) == {0, 1, 2}
    assert all(a and b for a, b in domain.texts)
    scores = read_sick(split, datasets_dir, label="relatedness").labels
    assert scores.min() >= 1 and scores.max() <= 5


def test_real_stsb(datasets_dir):
    totals = {"train": 5749, "dev": 1500, "test": 1379}
    for split, total in totals.items():
        domains = [read_stsb(genre, datasets_dir, splits=(split,)) for genre in EXPERIMENTS["stsb"]]
        assert sum(len(d) for d in domains) == total
    sizes = {genre: len(read_domain("stsb", genre, datasets_dir)) for genre in EXPERIMENTS["stsb"]}
    assert sizes == {"captions": 3250, "news": 4299, "forums": 1079}
    forums = read_stsb("forums", datasets_dir)
    assert forums.labels.min() >= 0 and forums.labels.max() <= 5
    assert all(a and b for a, b in forums.texts)
