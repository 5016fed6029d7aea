"""Readers for the shared transfer datasets: each domain becomes texts and labels ready for extract.

The formats are described in docs/datasets.md; every malformed record raises InputError naming
the file and line, so a broken copy of a dataset fails loudly instead of shrinking silently.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from neurosel.errors import InputError

EXPERIMENTS: dict[str, tuple[str, ...]] = {
    "amazon": ("books", "dvd", "electronics", "kitchen"),
    "sst-cr": ("sst2", "mr", "cr"),
    "sick": ("train", "trial", "test"),
    "stsb": ("captions", "news", "forums"),
}

AMAZON_DIR = "amazon_multidomain_blitzer2007"
SENTENCES_DIR = "sst2_mr_cr"
SICK_DIR = "sick2014"
STSB_DIR = "stsb"

SENTIMENT_NAMES = ("negative", "positive")
SST2_SPLITS = ("train", "dev", "test")
SICK_FILES = {"train": "SICK_train.txt", "trial": "SICK_trial.txt", "test": "SICK_test_annotated.txt"}
SICK_HEADER = ("pair_ID", "sentence_A", "sentence_B", "relatedness_score", "entailment_judgment")
SICK_NAMES = ("ENTAILMENT", "NEUTRAL", "CONTRADICTION")  # the MNLI/GLUE class order
SICK_LABELS = ("entailment", "relatedness")
STSB_SPLITS = ("train", "dev", "test")
STSB_GENRES = {
    "main-captions": "captions",
    "main-news": "news",
    "main-forum": "forums",  # the train split spells it main-forum, dev and test main-forums
    "main-forums": "forums",
}
STSB_COLUMNS = 7  # genre, source, year, id, score, s1, s2; licence columns may follow
STSB_THRESHOLD = 2.5  # the midpoint of 0-5: between "share some details" (2) and "roughly equivalent" (3)
STSB_NAMES = ("dissimilar", "similar")

REVIEW = re.compile(r"<review>(.*?)</review>", re.S)
REVIEW_TEXT = re.compile(r"<review_text>(.*?)</review_text>", re.S)
TITLE = re.compile(r"<title>(.*?)</title>", re.S)
ENTITY = re.compile(r"&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")
SENTENCE_END = (".", "!", "?")


@dataclass(frozen=True, eq=False)  # eq=False: == on the labels array is element-wise
class Domain:
    """One domain of an experiment: texts (or sentence pairs) and labels, in file order."""

    name: str
    texts: list[str] | list[tuple[str, str]]
    labels: np.ndarray  # int64 class ids, or float64 scores
    label_names: tuple[str, ...] | None  # class names in id order; None for numeric labels

    def __len__(self) -> int:
        return len(self.texts)


def read_domain(
    experiment: str,
    domain: str,
    data_dir: str | Path,
    *,
    max_per_class: int | None = None,
    limit: int | None = None,
    seed: int = 0,
    **options: Any,
) -> Domain:
    """One domain of an experiment in EXPERIMENTS; options go to its reader (splits, label, threshold)."""
    if experiment not in EXPERIMENTS:
        raise InputError(f"experiment {experiment!r}: unknown; use one of {', '.join(EXPERIMENTS)}")
    if domain not in EXPERIMENTS[experiment]:
        raise InputError(
            f"domain {domain!r}: not in experiment {experiment!r}; use one of "
            f"{', '.join(EXPERIMENTS[experiment])}"
        )
    result = READERS[experiment](domain, data_dir, **options)
    if max_per_class is None and limit is None:
        return result
    return subsample(result, max_per_class=max_per_class, limit=limit, seed=seed)


def subsample(
    domain: Domain, *, max_per_class: int | None = None, limit: int | None = None, seed: int = 0
) -> Domain:
    """A seeded random subset kept in file order: at most max_per_class rows per class, then at most limit."""
    for option, value in (("max_per_class", max_per_class), ("limit", limit)):
        if value is not None and value < 1:
            raise InputError(f"{option}={value}: must be at least 1")
    rng = np.random.default_rng(seed)
    keep = np.arange(len(domain))
    if max_per_class is not None:
        if domain.label_names is None:
            raise InputError(f"max_per_class: {domain.name} has numeric labels; use limit, or class labels")
        keep = np.concatenate(
            [
                rng.permutation(np.flatnonzero(domain.labels == c))[:max_per_class]
                for c in range(len(domain.label_names))
            ]
        )
    if limit is not None:
        keep = rng.permutation(keep)[:limit]
    keep = np.sort(keep)
    return replace(domain, texts=[domain.texts[i] for i in keep], labels=domain.labels[keep])


def read_amazon(domain: str, data_dir: str | Path) -> Domain:
    """Blitzer et al. 2007 reviews of one product domain: title + review text; 1 positive, 0 negative."""
    _check_choice("amazon domain", domain, EXPERIMENTS["amazon"])
    texts: list[str] = []
    labels: list[int] = []
    for label, polarity in ((1, "positive"), (0, "negative")):
        path = _dataset_file(data_dir, AMAZON_DIR, domain, f"{polarity}.review")
        blocks = list(_review_blocks(_read_text(path, "utf-8"), path))
        if not blocks:
            raise InputError(f"{path}: no <review> blocks; use an unmodified copy of the file")
        texts.extend(_review_text(block, path, line_no) for line_no, block in blocks)
        labels.extend([label] * len(blocks))
    return Domain(domain, texts, np.array(labels, dtype=np.int64), SENTIMENT_NAMES)


def read_sst2(data_dir: str | Path, *, splits: Sequence[str] = SST2_SPLITS) -> Domain:
    """SST-2 sentences (Kim-2014 split files); all three splits by default, as one domain's pool."""
    _check_splits(splits, SST2_SPLITS)
    parts = [
        _read_labelled_lines(_dataset_file(data_dir, SENTENCES_DIR, f"stsa.binary.{split}"), "utf-8")
        for split in splits
    ]
    return _sentences("sst2", [row for part in parts for row in part])


def read_mr(data_dir: str | Path) -> Domain:
    """MR movie-review sentences (Pang & Lee 2005); the file is Windows-1252, see docs/datasets.md."""
    path = _dataset_file(data_dir, SENTENCES_DIR, "rt-polarity.all")
    # cp1252 is ISO-8859-1 plus printable 0x80-0x9f: the file's 0x85/0x91/0x96/0x97 are … ‘ – —
    return _sentences("mr", _read_labelled_lines(path, "cp1252"))


def read_cr(data_dir: str | Path) -> Domain:
    """CR product-review sentences (Hu & Liu 2004), without the four labelled lines that have no sentence."""
    path = _dataset_file(data_dir, SENTENCES_DIR, "custrev.all")
    return _sentences("cr", _read_labelled_lines(path, "utf-8", skip_empty=True))


def read_sick(split: str, data_dir: str | Path, *, label: str = "entailment") -> Domain:
    """One SICK 2014 split file as sentence pairs: 3-way entailment class ids, or relatedness scores (1-5)."""
    _check_choice("sick split", split, tuple(SICK_FILES))
    _check_choice("sick label", label, SICK_LABELS)
    path = _dataset_file(data_dir, SICK_DIR, SICK_FILES[split])
    rows = _tsv_rows(path)
    line_no, header = next(rows, (1, []))
    if tuple(header) != SICK_HEADER:
        raise InputError(
            f"{path}: line {line_no}: header is not {' '.join(SICK_HEADER)}; pass a SICK 2014 file"
        )
    pairs: list[tuple[str, str]] = []
    values: list[float | int] = []
    for line_no, row in rows:
        if len(row) != len(SICK_HEADER):
            raise InputError(
                f"{path}: line {line_no}: {len(row)} tab-separated fields, expected {len(SICK_HEADER)}; "
                "fix the row"
            )
        pairs.append(_pair(row[1], row[2], path, line_no))
        score = _score(row[3], path, line_no)
        if row[4] not in SICK_NAMES:
            raise InputError(
                f"{path}: line {line_no}: entailment label {row[4]!r} is not one of {', '.join(SICK_NAMES)}"
            )
        values.append(score if label == "relatedness" else SICK_NAMES.index(row[4]))
    if not pairs:
        raise InputError(f"{path}: no rows after the header; use an unmodified copy of the file")
    if label == "relatedness":
        return Domain(split, pairs, np.array(values, dtype=np.float64), None)
    return Domain(split, pairs, np.array(values, dtype=np.int64), SICK_NAMES)


def read_stsb(
    genre: str,
    data_dir: str | Path,
    *,
    splits: Sequence[str] = STSB_SPLITS,
    threshold: float | None = None,
) -> Domain:
    """STS Benchmark pairs of one genre (captions, news, forums): 0-5 scores, or 1 if score >= threshold."""
    _check_choice("stsb genre", genre, EXPERIMENTS["stsb"])
    _check_splits(splits, STSB_SPLITS)
    pairs: list[tuple[str, str]] = []
    scores: list[float] = []
    for split in splits:
        path = _dataset_file(data_dir, STSB_DIR, f"sts-{split}.csv")
        for line_no, row in _tsv_rows(path):
            if len(row) < STSB_COLUMNS:
                raise InputError(
                    f"{path}: line {line_no}: {len(row)} tab-separated fields, expected at least "
                    f"{STSB_COLUMNS} (genre, source, year, id, score, s1, s2); fix the row"
                )
            if row[0] not in STSB_GENRES:
                raise InputError(
                    f"{path}: line {line_no}: genre {row[0]!r} is not one of {', '.join(STSB_GENRES)}"
                )
            score, pair = _score(row[4], path, line_no), _pair(row[5], row[6], path, line_no)
            if STSB_GENRES[row[0]] == genre:
                scores.append(score)
                pairs.append(pair)
    if not pairs:
        raise InputError(f"stsb: no {genre} rows in the {', '.join(splits)} files; check the files")
    values = np.array(scores, dtype=np.float64)
    if threshold is None:
        return Domain(genre, pairs, values, None)
    return Domain(genre, pairs, (values >= threshold).astype(np.int64), STSB_NAMES)


def _read_sst_cr(domain: str, data_dir: str | Path, **options: Any) -> Domain:
    """The sst-cr domains live in one directory but have a reader each."""
    return {"sst2": read_sst2, "mr": read_mr, "cr": read_cr}[domain](data_dir, **options)


READERS: dict[str, Callable[..., Domain]] = {
    "amazon": read_amazon,
    "sst-cr": _read_sst_cr,
    "sick": read_sick,
    "stsb": read_stsb,
}


def _check_choice(what: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InputError(f"{what} {value!r}: unknown; use one of {', '.join(allowed)}")


def _check_splits(splits: Sequence[str], allowed: tuple[str, ...]) -> None:
    if isinstance(splits, str) or not splits:
        raise InputError(f"splits={splits!r}: pass a non-empty list of {', '.join(allowed)}")
    for split in splits:
        _check_choice("split", split, allowed)


def _dataset_file(data_dir: str | Path, *parts: str) -> Path:
    """The path of a dataset file, or InputError saying which directory data_dir must be."""
    root = Path(data_dir)
    path = root.joinpath(*parts)
    if not root.is_dir():
        raise InputError(f"{root}: no such directory; point data_dir (--data-dir) at the datasets directory")
    if not path.is_file():
        raise InputError(
            f"{path}: no such file; point data_dir (--data-dir) at the datasets directory holding {parts[0]}/"
        )
    return path


def _read_text(path: Path, encoding: str) -> str:
    data = _read_bytes(path)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InputError(
            f"{path}: line {line}: not valid {encoding} (byte {e.start}); use an unmodified copy of the file"
        ) from None


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise InputError(f"{path}: cannot be read ({e.strerror}); check its permissions") from None


def _lines(path: Path, encoding: str) -> Iterator[tuple[int, str]]:
    """Non-blank lines with 1-based numbers; split on \\n only (str.splitlines also splits on U+0085)."""
    for line_no, line in enumerate(_read_text(path, encoding).split("\n"), start=1):
        line = line.removesuffix("\r")
        if line.strip():
            yield line_no, line


def _read_labelled_lines(path: Path, encoding: str, *, skip_empty: bool = False) -> list[tuple[int, str]]:
    """(label, sentence) of each `<label> <sentence>` line, label 0 or 1."""
    rows = []
    for line_no, line in _lines(path, encoding):
        label, _, sentence = line.partition(" ")
        if label not in ("0", "1"):
            raise InputError(
                f"{path}: line {line_no}: label {label!r} is not 0 or 1; lines are `<label> <sentence>`"
            )
        sentence = sentence.strip()
        if sentence:
            rows.append((int(label), sentence))
        elif not skip_empty:
            raise InputError(f"{path}: line {line_no}: no sentence after the label; fill or drop the line")
    if not rows:
        raise InputError(f"{path}: no `<label> <sentence>` lines; use an unmodified copy of the file")
    return rows


def _sentences(name: str, rows: list[tuple[int, str]]) -> Domain:
    labels = np.array([label for label, _ in rows], dtype=np.int64)
    return Domain(name, [sentence for _, sentence in rows], labels, SENTIMENT_NAMES)


def _review_blocks(text: str, path: Path) -> Iterator[tuple[int, str]]:
    """(line of `<review>`, body) of each review; an unclosed or stray review tag is an error."""
    line_no, counted, end = 1, 0, 0
    for match in REVIEW.finditer(text):
        _check_outside_reviews(text, end, match.start(), path)
        if "<review>" in match.group(1):
            raise InputError(
                f"{path}: line {_line_at(text, match.start())}: <review> is not closed before the next "
                "<review>; fix the file"
            )
        line_no += text.count("\n", counted, match.start())
        counted, end = match.start(), match.end()
        yield line_no, match.group(1)
    _check_outside_reviews(text, end, len(text), path)


def _check_outside_reviews(text: str, start: int, stop: int, path: Path) -> None:
    """Text between review blocks holds no review tag: one there lost its partner."""
    for tag, partner in (("<review>", "</review>"), ("</review>", "<review>")):
        pos = text.find(tag, start, stop)
        if pos >= 0:
            raise InputError(f"{path}: line {_line_at(text, pos)}: {tag} has no {partner}; fix the file")


def _line_at(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _review_text(block: str, path: Path, line_no: int) -> str:
    """Title and review text joined as one text, with HTML entities (&quot;, &#8217;) decoded."""
    body = REVIEW_TEXT.search(block)
    if body is None:
        raise InputError(f"{path}: line {line_no}: review has no <review_text>; fix or drop the review")
    text = _unescape(body.group(1).strip())
    if not text:
        raise InputError(f"{path}: line {line_no}: review has an empty <review_text>; fix or drop the review")
    title = TITLE.search(block)
    title_text = _unescape(title.group(1).strip()) if title else ""
    if not title_text:
        return text
    return f"{title_text}{' ' if title_text.endswith(SENTENCE_END) else '. '}{text}"


def _unescape(text: str) -> str:
    """Decode complete entities only: html.unescape alone would also turn a bare '&not' into '¬'."""
    return ENTITY.sub(lambda m: html.unescape(m.group()), text)


def _tsv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Tab-separated fields of each line; quotes are literal text (the csv.QUOTE_NONE reading)."""
    for line_no, line in _lines(path, "utf-8"):
        yield line_no, line.split("\t")


def _pair(a: str, b: str, path: Path, line_no: int) -> tuple[str, str]:
    a, b = a.strip(), b.strip()
    if not a or not b:
        raise InputError(f"{path}: line {line_no}: a sentence of the pair is empty; fix or drop the row")
    return a, b


def _score(value: str, path: Path, line_no: int) -> float:
    try:
        score = float(value)
    except ValueError:
        score = math.nan
    if not math.isfinite(score):
        raise InputError(f"{path}: line {line_no}: score {value!r} is not a number; fix the row")
    return score
