"""The report renderer: files, valid plots, numbers equal to the JSON, missing keys, CLI, bad files."""

from __future__ import annotations

import copy
import json
import re
from itertools import permutations

import numpy as np
import pytest
from matplotlib.image import imread

from neurosel.cli import main
from neurosel.errors import InputError
from neurosel.report import PLOT_FILES, load_results, write_report

DATASETS = ["books", "dvd", "electronics", "kitchen"]
KS = [10, 30, 100, 300, 1000]


def synthetic_results(seed: int = 0) -> dict:
    """Amazon-like results: 4 datasets × 7 layers, 12 pairs and 4 leave-one-out rows per normalisation."""
    rng = np.random.default_rng(seed)
    layers, k = list(range(7)), 300
    profile = np.array([2, 5, 9, 14, 20, 26, 24], dtype=float)
    counts = {d: rng.multinomial(k, rng.dirichlet(profile * 4)).tolist() for d in DATASETS}
    fingerprints = {d: [100 * c / k for c in counts[d]] for d in DATASETS}
    fp = np.array([fingerprints[d] for d in DATASETS])
    unit = fp / np.linalg.norm(fp, axis=1, keepdims=True)
    matrix = unit @ unit.T
    transfers, pairs = [], []
    for norm, shift in (("source", 0.0), ("target", 0.012)):
        for src, tgt in permutations(DATASETS, 2):
            sim = matrix[DATASETS.index(src), DATASETS.index(tgt)]
            base = 0.62 + 2.5 * (sim - 0.9) + shift + rng.normal(0, 0.015)
            by_k = {
                "selected": {str(q): base - 0.09 * np.exp(-q / 60) + rng.normal(0, 0.004) for q in KS},
                "random": {
                    str(q): {"mean": base - 0.2 * np.exp(-q / 300) - 0.02, "std": 0.05 / np.sqrt(q / 10)}
                    for q in KS
                },
                "stats_topk": {str(q): base - 0.12 * np.exp(-q / 80) - 0.01 for q in KS},
            }
            transfers.append(
                {
                    "sources": [src],
                    "target": tgt,
                    "normalisation": norm,
                    "scores": {
                        "selected": by_k["selected"]["300"],
                        "all": base - 0.008,
                        "random": {**by_k["random"]["300"], "seeds": 5},
                        "stats_topk": by_k["stats_topk"]["300"],
                        "best_layer": {"score": base - 0.015, "layer": int(rng.integers(3, 7))},
                        "last_cls": base - 0.08,
                        "sklearn": base - 0.006,
                    },
                    "by_k": by_k,
                }
            )
            if norm == "source":
                pairs.append({"source": src, "target": tgt, "similarity": sim, "score": base})
        for tgt in DATASETS:
            sources = [d for d in DATASETS if d != tgt]
            score = 0.8 + shift + rng.normal(0, 0.01)
            transfers.append(
                {
                    "sources": sources,
                    "target": tgt,
                    "normalisation": norm,
                    "scores": {
                        "selected": score,
                        "all": score - 0.01,
                        "random": {"mean": 0.74, "std": 0.021},
                    },
                }
            )
    return {
        "experiment": "amazon",
        "model": "all-MiniLM-L6-v2",
        "layers": layers,
        "hidden": 384,
        "k": k,
        "ks": KS,
        "metric": "accuracy",
        "datasets": DATASETS,
        "fingerprints": fingerprints,
        "selected_per_layer": counts,
        "similarity": {"measure": "cosine", "matrix": matrix.tolist()},
        "paths": {d: path_record(d, k, entered=212 if d == "dvd" else 1000) for d in DATASETS},
        "transfers": transfers,
        "correlation": {
            "measure": "cosine",
            "spearman": 0.3142,
            "p_value": 0.1875,
            "permutations": 10000,
            "pairs": pairs,
            "control": {
                "distance": "rms mean shift",
                "spearman_closeness": 0.5517,
                "p_value_closeness": 0.0312,
                "partial_spearman": -0.0423,
                "p_value_partial": 0.8871,
            },
        },
        "notes": ["Synthetic numbers for tests.", "Random-k uses 5 seeds."],
        "baseline_descriptions": {"selected": "top k by path entry.", "custom": "a method of our own."},
    }


def path_record(name: str, k: int, entered: int) -> dict:
    """A PathRecord's JSON: a path asked for 1,000 neurons that stops early (separated) below that."""
    separated = entered < 1000
    return {
        "name": name, "store": f"/data/{name}.zarr", "k": k, "entered": entered,
        "filled": max(0, k - entered),
        "separation_lambda": 0.00123 if separated else None, "lambda_max": 0.157, "target_support": 1000,
        "key": "l1-logistic-0123456789ab",
    }  # fmt: skip


@pytest.fixture
def results() -> dict:
    return synthetic_results()


def table(markdown: str, heading: str) -> list[list[str]]:
    """The cells of the first table after `heading` (header row first, alignment row dropped)."""
    lines = markdown[markdown.index(heading) :].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return [rows[0], *rows[2:]]


def number(cell: str) -> float:
    """The first number printed in a cell (`**0.812**`, `0.741 ± 0.020`, `0.790 (L5)`)."""
    return float(re.match(r"\**(-?\d+\.\d+)", cell).group(1))


def assert_printed(cell: str, value: float, digits: int) -> None:
    assert abs(number(cell) - value) <= 0.5 * 10**-digits + 1e-12, (cell, value)
    assert len(re.match(r"\**-?\d+\.(\d+)", cell).group(1)) == digits, cell


def test_writes_report_results_and_plots(results, tmp_path):
    report = write_report(results, tmp_path / "out")
    assert report == tmp_path / "out" / "report.md"
    text = report.read_text(encoding="utf-8")
    for name in PLOT_FILES:
        assert f"]({name})" in text
        image = imread(tmp_path / "out" / name)
        height, width = image.shape[:2]
        assert 400 <= width <= 2500 and 300 <= height <= 2000, (name, image.shape)
        colours = np.unique(image.reshape(-1, image.shape[-1]), axis=0)
        assert len(colours) > 20, name
    assert json.loads((tmp_path / "out" / "results.json").read_text(encoding="utf-8")) == results


def test_rerender_is_byte_identical(results, tmp_path):
    write_report(results, tmp_path / "a")
    write_report(copy.deepcopy(results), tmp_path / "b")
    for name in ["report.md", "results.json", *PLOT_FILES]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


@pytest.mark.parametrize("norm", ["source", "target"])
def test_transfer_table_numbers_equal_json(results, tmp_path, norm):
    text = write_report(results, tmp_path).read_text(encoding="utf-8")
    header, *rows = table(text, f"### Accuracy, {norm} normalisation")
    methods = ["selected", "all", "random", "stats_topk", "best_layer", "last_cls", "sklearn"]
    assert header[0] == "transfer" and len(header) == 1 + len(methods)
    transfers = {
        f"{' + '.join(t['sources'])} → {t['target']}": t
        for t in results["transfers"]
        if t["normalisation"] == norm
    }
    single = [t for t in transfers.values() if len(t["sources"]) == 1]
    assert [r[0] for r in rows[:-1]] == list(transfers)  # single-source first, then multi-source
    for row in rows:
        if row[0].startswith("*mean"):
            scores = {m: np.mean([_primary(t["scores"][m]) for t in single]) for m in methods}
            scores["random"] = {
                "mean": np.mean([t["scores"]["random"]["mean"] for t in single]),
                "std": np.mean([t["scores"]["random"]["std"] for t in single]),
            }
        else:
            scores = transfers[row[0]]["scores"]
        printed = {}
        for method, cell in zip(methods, row[1:], strict=True):
            if method not in scores:
                assert cell == "–"
                continue
            assert_printed(cell, _primary(scores[method]), 3)
            printed[method] = number(cell)
            if method == "random":
                assert_printed(cell.split("±")[1].strip(" *"), scores[method]["std"], 3)
            if method == "best_layer" and isinstance(scores[method], dict):
                assert cell.strip("*").endswith(f"(L{scores[method]['layer']})")
        best = max(printed.values())
        bold = [m for m, cell in zip(methods, row[1:], strict=True) if cell.startswith("**")]
        assert bold == [m for m, v in printed.items() if v == best], row


def _primary(score) -> float:
    """The number a score is compared by: itself, a seed mean, or a detailed result's score."""
    return score.get("mean", score.get("score")) if isinstance(score, dict) else score


def test_summary_states_headline_means(results, tmp_path):
    text = write_report(results, tmp_path).read_text(encoding="utf-8")
    summary = text[text.index("## Summary") : text.index("## Transfer scores (accuracy)")]
    for norm in ("source", "target"):
        single = [t for t in results["transfers"] if t["normalisation"] == norm and len(t["sources"]) == 1]
        selected = np.mean([t["scores"]["selected"] for t in single])
        random_sd = np.mean([t["scores"]["random"]["std"] for t in single])
        assert f"{selected:.3f}" in summary
        assert f"{np.mean([t['scores']['all'] for t in single]):.3f}" in summary
        assert f"{np.mean([t['scores']['random']['mean'] for t in single]):.3f} ± {random_sd:.3f}" in summary
        multi = [t for t in results["transfers"] if t["normalisation"] == norm and len(t["sources"]) > 1]
        assert f"{np.mean([t['scores']['selected'] for t in multi]):.3f}" in summary
        into = [
            np.mean([s["scores"]["selected"] for s in single if s["target"] == t["target"]]) for t in multi
        ]
        assert f"{np.mean(into):.3f}" in summary


def test_fingerprints_similarity_and_correlation_equal_json(results, tmp_path):
    text = write_report(results, tmp_path).read_text(encoding="utf-8")
    header, *rows = table(text, "## Fingerprints")
    assert header == ["dataset", *(f"L{layer}" for layer in results["layers"])]
    assert [r[0] for r in rows] == results["datasets"]
    for row in rows:
        for cell, value in zip(row[1:], results["fingerprints"][row[0]], strict=True):
            assert_printed(cell, value, 1)
    header, *rows = table(text, "### Fingerprint similarity (cosine)")
    for row, values in zip(rows, results["similarity"]["matrix"], strict=True):
        for cell, value in zip(row[1:], values, strict=True):
            assert_printed(cell, value, 3)
    corr = results["correlation"]
    assert f"Spearman ρ = {corr['spearman']:.2f}" in text
    assert f"p = {corr['p_value']:.2g}, 10,000 permutations" in text
    c = corr["control"]
    assert f"Spearman ρ = {c['spearman_closeness']:.2f} (p = {c['p_value_closeness']:.2g})" in text
    assert f"partial ρ = {c['partial_spearman']:.2f} (p = {c['p_value_partial']:.2g})" in text
    assert "target's labels" in text and "not part of the unsupervised" in text


def test_multi_source_table_equals_json(results, tmp_path):
    text = write_report(results, tmp_path).read_text(encoding="utf-8")
    _, *rows = table(text, "## Multi-source transfer")
    source = [t for t in results["transfers"] if t["normalisation"] == "source"]
    for row in rows:
        multi = next(t for t in source if len(t["sources"]) > 1 and row[0].endswith(f"→ {t['target']}"))
        into = [
            t["scores"]["selected"]
            for t in source
            if len(t["sources"]) == 1 and t["target"] == multi["target"]
        ]
        assert_printed(row[1], multi["scores"]["selected"], 3)
        assert_printed(row[2], float(np.mean(into)), 3)
        assert_printed(row[3], max(into), 3)


def test_notes_and_methods(results, tmp_path):
    text = write_report(results, tmp_path).read_text(encoding="utf-8")
    for note in results["notes"]:
        assert f"- {note}" in text
    assert "- **selected k**: top k by path entry." in text
    assert "- **custom**: a method of our own." in text
    assert "- **last CLS**:" in text  # a default description where none is given


def test_paths_table_equals_json_and_filled_datasets_are_named(results, tmp_path):
    results["paths"]["dvd"] = path_record("dvd", 300, entered=212)
    text = write_report(results, tmp_path).read_text(encoding="utf-8")
    header, *rows = table(text, "## Sparse paths behind the selections")
    columns = ["dataset", "entered", "separated at λ / λ_max", "ranking", "selected k", "never entered"]
    assert header == columns
    assert [r[0] for r in rows] == results["datasets"]
    for name, entered, ratio, rule, k, filled in rows:
        path = results["paths"][name]
        assert rule == path.get("ranking", "entry")
        assert int(entered.replace(",", "")) == path["entered"] and int(k) == path["k"] == 300
        assert int(filled) == path["filled"] == max(0, 300 - path["entered"])
        if path["separation_lambda"] is None:
            assert ratio == "–"
        else:
            assert float(ratio) == pytest.approx(path["separation_lambda"] / path["lambda_max"], rel=1e-2)
    assert rows[1][1:] == ["212", "0.00783", "entry", "300", "88"]
    assert "> dvd: part of the selected neurons never entered the sparse path" in text
    summary = text[text.index("## Summary") : text.index("## Transfer scores")]
    assert "For 1 of 4 datasets (dvd), some of the k = 300 selected neurons never entered" in summary
    results["paths"]["dvd"] = path_record("dvd", 300, entered=1000)
    text = write_report(results, tmp_path).read_text(encoding="utf-8")
    assert "never entered the sparse path" not in text


@pytest.mark.parametrize("norm", ["source", "target"])
def test_paired_table_equals_a_recomputation_from_json(results, tmp_path, norm):
    from scipy.stats import permutation_test

    text = write_report(results, tmp_path).read_text(encoding="utf-8")
    header, *rows = table(text, f"### {norm.capitalize()} normalisation (")
    assert header == ["selected against", *(f"k = {k:,}" for k in KS)]
    single = [t for t in results["transfers"] if t["normalisation"] == norm and len(t["sources"]) == 1]
    # sklearn has no scores per k in these results: only methods scored at every k get a row per k
    methods = {"random": "random", "stats top-k": "stats_topk", "all neurons": "all"}
    methods |= {"best layer": "best_layer", "last CLS": "last_cls"}
    assert [r[0] for r in rows] == list(methods)
    for label, *cells in rows:
        method = methods[label]
        for k, cell in zip(KS, cells, strict=True):
            mine = np.array([t["by_k"]["selected"][str(k)] for t in single])
            theirs = [
                t["by_k"][method][str(k)] if method in t["by_k"] else t["scores"][method] for t in single
            ]
            d = mine - np.array([_primary(v) for v in theirs])
            p = permutation_test((d,), np.mean, permutation_type="samples", n_resamples=np.inf).pvalue
            match = re.fullmatch(r"([+-]\d\.\d{3})(?: \(([+-]\d+\.\d) sd\))?, (\d+)/(\d+), p (\S+)", cell)
            assert match, cell
            assert float(match[1]) == pytest.approx(d.mean(), abs=5e-4)
            assert (int(match[3]), int(match[4])) == ((d > 0).sum(), len(single))
            assert float(match[5]) == pytest.approx(p, rel=0.05)
            if method == "random":
                sd = np.mean([v["std"] for v in theirs])
                assert float(match[2]) == pytest.approx(d.mean() / sd, abs=0.05)
            else:
                assert match[2] is None


OPTIONAL = [
    "correlation", "by_k", "target", "multi", "fingerprints", "similarity", "transfers", "notes", "k", "paths"
]  # fmt: skip


@pytest.mark.parametrize("missing", OPTIONAL)
def test_missing_parts_still_render(results, tmp_path, missing):
    if missing == "by_k":
        for t in results["transfers"]:
            t.pop("by_k", None)
    elif missing == "target":
        results["transfers"] = [t for t in results["transfers"] if t["normalisation"] == "source"]
    elif missing == "multi":
        results["transfers"] = [t for t in results["transfers"] if len(t["sources"]) == 1]
    else:
        del results[missing]
    text = write_report(results, tmp_path).read_text(encoding="utf-8")
    says = {
        "correlation": "_No correlation in these results",
        "by_k": "_No scores per k (`by_k`)",
        "target": "no rows normalised with the target's own unlabelled mean",
        "multi": "_No multi-source rows in these results._",
        "fingerprints": "_No fingerprints in these results._",
        "similarity": "_No fingerprint similarity matrix",
        "transfers": "_No transfers in these results._",
        "notes": "## Methods",
        "k": "| selected k |",
        "paths": "_No sparse-path records (neurons entered, separation, filled) in these results._",
    }
    assert says[missing] in text
    assert missing != "notes" or "## Notes" not in text
    plot_of = {
        "correlation": "similarity_vs_transfer.png",
        "by_k": "accuracy_vs_k.png",
        "fingerprints": "fingerprints.png",
        "transfers": "accuracy_vs_k.png",
    }
    assert {p.name for p in tmp_path.glob("*.png")} == set(PLOT_FILES) - {plot_of.get(missing)}


def test_numpy_scalars_are_written_as_json_numbers(results, tmp_path):
    results["k"] = np.int64(300)
    results["transfers"][0]["scores"]["selected"] = np.float32(0.875)
    text = write_report(results, tmp_path).read_text(encoding="utf-8")
    assert "| books → dvd | **0.875** |" in text
    saved = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert saved["k"] == 300 and saved["transfers"][0]["scores"]["selected"] == 0.875


def test_bare_results_render(tmp_path):
    text = write_report({}, tmp_path).read_text(encoding="utf-8")
    assert text.startswith("# Neuron-selection transfer: unnamed experiment")
    assert not list(tmp_path.glob("*.png"))


def test_stale_plots_are_removed(results, tmp_path):
    write_report(results, tmp_path)
    del results["correlation"]
    write_report(results, tmp_path)
    assert not (tmp_path / "similarity_vs_transfer.png").exists()


def test_other_metrics_and_unknown_methods_render(results, tmp_path):
    results["metric"] = "pearson"
    for t in results["transfers"]:
        t["scores"]["ridge"] = 0.5
        t["other_metrics"] = {"spearman": {"selected": 0.61, "all": None}}
    text = write_report(results, tmp_path).read_text(encoding="utf-8")
    header, *rows = table(text, "### Pearson, source normalisation")
    assert header[-1] == "ridge" and rows[0][-1] == "0.500"
    header, *rows = table(text, "### Spearman, target normalisation")
    assert header == ["transfer", "selected (k = 300)", "all neurons"]
    assert rows[0][1:] == ["**0.610**", "–"]


def test_cli_rerenders_from_json(results, tmp_path, capsys):
    first = write_report(results, tmp_path / "first")
    assert main(["report", str(first.parent / "results.json"), "--out", str(tmp_path / "again")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "again" / "report.md")
    for name in ["report.md", "results.json", *PLOT_FILES]:
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ('{"experiment": "amazon",', "not valid JSON"),
        (b"\xff\xfe\x00", "not UTF-8"),
        ("[1, 2]", "expected a JSON object"),
        ('{"transfers": [{"sources": ["books"], "scores": {}}]}', "'target'"),
        ('{"transfers": [{"sources": ["a"], "target": "b", "scores": {"all": "high"}}]}', "'scores'"),
        (
            '{"layers": [0, 1], "fingerprints": {"books": [100]}}',
            "one number per layer for every dataset (lengths [1, 2])",
        ),
        ('{"similarity": {"matrix": [[1, 0]]}}', "square"),
        ('{"k": "300"}', "'k' must be an integer"),
        ('{"datasets": ["books", 3]}', "'datasets' must be a list of dataset names"),
        ('{"fingerprints": {"a": [50, 50], "b": [100]}}', "one number per layer"),
        (
            '{"transfers": [{"sources": ["a"], "target": "b", "scores": {}, "by_k": {"all": {"ten": 1}}}]}',
            "by_k",
        ),
        (
            '{"transfers": [{"sources": ["a"], "target": "b", "scores": {}, "other_metrics": []}]}',
            "other_metrics",
        ),
        ('{"correlation": {"spearman": "high"}}', "correlation['spearman']"),
        ('{"correlation": {"control": {"partial_spearman": "low"}}}', "correlation['control']"),
        ('{"paths": {"books": [300]}}', "'paths' must be an object: dataset → its sparse path's record"),
        ('{"paths": {"books": {"entered": 2.5}}}', "paths['books'] must hold integers 'k', 'entered'"),
        ('{"paths": {"books": {"separation_lambda": "early"}}}', "paths['books'] must hold integers"),
    ],
)
def test_bad_results_file(tmp_path, content, message, capsys):
    path = tmp_path / "results.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=re.escape(message)) as info:
        load_results(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)
    assert main(["report", str(path), "--out", str(tmp_path / "out")]) == 2
    assert str(path) in capsys.readouterr().err
