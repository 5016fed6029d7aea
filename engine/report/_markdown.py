"""The report's Markdown: one function per section, each formatted from the results dictionary."""

from __future__ import annotations

from typing import Any

from neurosel.report._cells import (
    METHOD_LABELS,
    METHODS,
    MISSING,
    NORMALISATIONS,
    PERCENT_DIGITS,
    SCORE_DIGITS,
    _bold_best,
    _cell,
    _datasets,
    _fmt,
    _is_number,
    _k_text,
    _label,
    _layers,
    _mean,
    _mean_score,
    _methods,
    _normalisations,
    _p_text,
    _scores,
    _transfers,
    _value,
)
from neurosel.report._paired import paired_difference


def render_markdown(results: dict[str, Any], plots: set[str]) -> str:
    """The report's Markdown; `plots` names the PNG files written next to it."""
    sections = [
        _title(results),
        _summary(results),
        _transfer_section(results, plots),
        _paired_section(results),
        _paths_section(results),
        _row_samples_section(results),
        _multi_source_section(results),
        _fingerprint_section(results, plots),
        _correlation_section(results, plots),
        _methods_section(results),
        _notes_section(results),
    ]
    return "\n\n".join(s for s in sections if s) + "\n"


def _title(results: dict[str, Any]) -> str:
    lines = [f"# Neuron-selection transfer: {results.get('experiment', 'unnamed experiment')}", ""]
    facts = []
    if "model" in results:
        facts.append(f"model `{results['model']}`")
    if "layers" in results and "hidden" in results:
        n = len(results["layers"])
        facts.append(f"{n} layers × {results['hidden']:,} units = {n * results['hidden']:,} neurons")
    if "datasets" in results:
        facts.append(f"datasets {', '.join(results['datasets'])}")
    if "metric" in results:
        facts.append(f"metric {results['metric']} on the target")
    if "k" in results:
        facts.append(f"headline {_k_text(results)}")
    if "ks" in results:
        facts.append(f"k swept over {', '.join(f'{k:,}' for k in results['ks'])}")
    text = "; ".join(facts)
    lines.append(
        text[:1].upper() + text[1:] + "." if facts else "_No description of the setup in these results._"
    )
    return "\n".join(lines)


def _summary(results: dict[str, Any]) -> str:
    norms = _normalisations(results)
    if not norms:
        return "## Summary\n\n_No transfers in these results._"
    k = _k_text(results)
    sentences = []
    for norm in norms:
        rows = _transfers(results, norm, single=True)
        if not rows:
            sentences.append(f"There are no single-source pairs with the {norm} normalisation.")
            continue
        means = {m: _mean_score([t["scores"].get(m) for t in rows]) for m in ("selected", "all", "random")}
        against = [f"{_cell(means['all'])} with all neurons"] if _value(means["all"]) is not None else []
        if _value(means["random"]) is not None:
            against.append(f"{_cell(means['random'])} with {k} random neurons (± sd over seeds)")
        sentences.append(
            f"Normalised with {NORMALISATIONS[norm]}, the {k} selected neurons score "
            f"**{_cell(means['selected'])}** on average over {len(rows)} single-source pairs"
            + (f", against {' and '.join(against)}." if against else ".")
        )
        comparison = _multi_vs_single(results, norm)
        if comparison:
            multi = _mean(c[1] for c in comparison)
            single = _mean(c[2] for c in comparison)
            wins = sum(1 for _, m, s, _ in comparison if m is not None and s is not None and m > s)
            sentences.append(
                f"Multi-source transfer scores {_fmt(multi)} on average over {len(comparison)} targets, "
                f"against {_fmt(single)} for the mean single-source transfer into the same target "
                f"(better on {wins} of {len(comparison)})."
            )
    filled = _filled(results)
    if filled:
        sentences.append(
            f"For {len(filled)} of {len(results['paths'])} datasets ({', '.join(filled)}), some of the "
            f"{k} selected neurons never entered the sparse path: they are ranked by another rule than "
            "entry into it (see *Sparse paths behind the selections*)."
        )
    sentences += [
        f"These results have no rows normalised with {NORMALISATIONS[n]}."
        for n in NORMALISATIONS
        if n not in norms
    ]
    return "## Summary\n\n" + " ".join(sentences)


def _transfer_section(results: dict[str, Any], plots: set[str]) -> str:
    norms = _normalisations(results)
    if not norms:
        return ""
    metric = results.get("metric", "score")
    extra = list(dict.fromkeys(m for t in results["transfers"] for m in t.get("other_metrics", {})))
    lines = [
        f"## Transfer scores ({metric})",
        "",
        f"One row per transfer (source → target), {metric} on the target; the best in each row in bold. "
        "The mean row averages the single-source pairs.",
    ]
    for key, name in [("scores", metric), *((m, m) for m in extra)]:
        for norm in norms:
            lines += ["", f"### {name.capitalize()}, {norm} normalisation ({NORMALISATIONS[norm]})", ""]
            lines += _transfer_table(results, norm, key)
    lines.append("")
    if "accuracy_vs_k.png" in plots:
        lines.append(f"![{metric} against k](accuracy_vs_k.png)")
    else:
        lines.append("_No scores per k (`by_k`) in these results, so no plot against k._")
    return "\n".join(lines)


def _transfer_table(results: dict[str, Any], norm: str, key: str) -> list[str]:
    single = _transfers(results, norm, single=True)
    multi = _transfers(results, norm, single=False)
    methods = _methods(single + multi, key)
    if not methods:
        return [f"_No {key} for these transfers._"]
    header = ["transfer", *(_method_label(results, m) for m in methods)]
    rows = [[_label(t), *_bold_best([_scores(t, key).get(m) for m in methods])] for t in single + multi]
    if single:
        means = [_mean_score([_scores(t, key).get(m) for t in single]) for m in methods]
        rows.append([f"*mean of {len(single)} single-source*", *_bold_best(means)])
    return _table(header, rows)


# What the selection is compared with pair by pair (labelled by METHODS' `short`): per-k baselines,
# then those that do not depend on k.
PAIRED_BY_K = ("random", "stats_topk", "sklearn")
PAIRED_FIXED = ("all", "best_layer", "last_cls")


def _paired_section(results: dict[str, Any]) -> str:
    """Selected against each baseline within every single-source pair, at every k: the mean
    difference, the pairs won, and the sign-flip p-value (engine/report/_paired.py)."""
    blocks = []
    for norm in _normalisations(results):
        rows = [t for t in _transfers(results, norm, single=True) if "selected" in t.get("by_k", {})]
        ks = sorted({int(k) for t in rows for k in t["by_k"]["selected"]})
        table = []
        for method in (*PAIRED_BY_K, *PAIRED_FIXED):
            cells = [_paired_cell(rows, method, k) for k in ks]
            if any(c != MISSING for c in cells):
                table.append([METHODS[method].short, *cells])
        if table:
            header = ["selected against", *(f"k = {k:,}" for k in ks)]
            blocks += ["", f"### {norm.capitalize()} normalisation ({NORMALISATIONS[norm]})", ""]
            blocks += _table(header, table)
    if not blocks:
        return ""
    intro = (
        "## Selected against the baselines, pair by pair\n\n"
        "Each cell compares the selected neurons at that k with a baseline within every single-source "
        "pair: the mean difference (selected − baseline), the pairs where selected is ahead, and the "
        "two-sided sign-flip permutation p-value of the mean difference (exact over all sign patterns up "
        "to 16 pairs, sampled beyond). "
        "For random k, the difference is also given in the seeds' mean standard deviation. All neurons, "
        "the best layer and the last CLS do not depend on k."
    )
    return intro + "\n" + "\n".join(blocks)


def _paired_cell(rows: list[dict[str, Any]], method: str, k: int) -> str:
    a, b, spread = [], [], []
    for t in rows:
        mine = _value(t["by_k"]["selected"].get(str(k)))
        other = t["by_k"].get(method, {}).get(str(k)) if method in PAIRED_BY_K else t["scores"].get(method)
        if mine is not None and _value(other) is not None:
            a.append(mine)
            b.append(_value(other))
            if isinstance(other, dict) and _is_number(other.get("std")):
                spread.append(other["std"])
    if not a:
        return MISSING
    diff = paired_difference(a, b)
    text = f"{round(diff.mean, SCORE_DIGITS) + 0.0:+.{SCORE_DIGITS}f}"  # + 0.0: no "-0.000"
    sd = _mean(spread)
    if sd:
        text += f" ({round(diff.mean / sd, 1) + 0.0:+.1f} sd)"
    return f"{text}, {diff.wins}/{diff.pairs}, p {_p_text(diff.p_value)}"


def _method_label(results: dict[str, Any], method: str) -> str:
    label = METHOD_LABELS.get(method, method)
    if "k" in results and method in ("selected", "random"):
        return label.replace(" k", f" ({_k_text(results)})", 1)
    return label


def _filled(results: dict[str, Any]) -> list[str]:
    """Datasets whose selected k took neurons that never entered their sparse path."""
    paths = results.get("paths", {})
    return [n for n in _datasets(results, paths) if paths[n].get("filled")]


def _paths_section(results: dict[str, Any]) -> str:
    lines = ["## Sparse paths behind the selections", ""]
    paths = results.get("paths")
    if not paths:
        lines.append("_No sparse-path records (neurons entered, separation, filled) in these results._")
        return "\n".join(lines)
    lines += [
        "The path that ranks each dataset's neurons for its single-source transfers and its fingerprint: "
        "how many neurons entered it (a non-zero weight at some λ), the λ at which it stopped because "
        "the examples were separated (as a fraction of λ_max; – if it did not stop for that reason), "
        "the ranking rule that selected the k, and how many of the k selected neurons never entered "
        "the path: under the `entry` and `elastic-net` rules (entry into the path; the elastic-net "
        "rule's path is the one shown) they are ranked by closeness to entering (at a larger k of the "
        "curves: k − entered); the other rules (stability selection, the Fisher score, both) rank "
        "every neuron on their own terms.",
        "",
    ]
    header = ["dataset", "entered", "separated at λ / λ_max", "ranking", "selected k", "never entered"]
    rows = [
        [
            n, _count(p.get("entered")), _ratio(p), str(p.get("ranking", "entry")), _count(p.get("k")),
            _count(p.get("filled")),
        ]
        for n, p in ((n, paths[n]) for n in _datasets(results, paths))
    ]  # fmt: skip
    lines += _table(header, rows)
    filled = _filled(results)
    if filled:
        lines += [
            "",
            f"> {', '.join(filled)}: part of the selected neurons never entered the sparse path; their "
            "rank comes from another rule than the path's entry order.",
        ]
    return "\n".join(lines)


def _count(value: Any) -> str:
    return MISSING if value is None else f"{value:,}"


def _ratio(path: dict[str, Any]) -> str:
    """λ at separation / λ_max, to 3 significant digits."""
    lam, top = path.get("separation_lambda"), path.get("lambda_max")
    return MISSING if lam is None or not top else f"{lam / top:.3g}"


def _multi_vs_single(
    results: dict[str, Any], norm: str
) -> list[tuple[dict[str, Any], float | None, float | None, dict[str, Any] | None]]:
    """Each multi-source row, its selected score, and the mean and best single-source rows into its target."""
    single = _transfers(results, norm, single=True)
    out = []
    for t in _transfers(results, norm, single=False):
        into = [
            s
            for s in single
            if s["target"] == t["target"] and _value(s["scores"].get("selected")) is not None
        ]
        best = max(into, key=lambda s: _value(s["scores"]["selected"]), default=None)
        mean = _mean(_value(s["scores"]["selected"]) for s in into)
        out.append((t, _value(t["scores"].get("selected")), mean, best))
    return out


def _row_samples_section(results: dict[str, Any]) -> str:
    """Which classifiers saw a row sample of a streamed source, and how many rows (`rows_used`)."""
    seen: dict[str, dict[str, int]] = {}
    for t in results.get("transfers", []):
        used = t.get("rows_used")
        if used:
            seen.setdefault(" + ".join(t["sources"]), used)
    if not seen:
        return ""
    lines = [
        "## Row samples",
        "",
        "Sources larger than the in-core budget were streamed: the classifiers on every neuron were "
        "fitted on a stratified row sample (docs/scale-out.md); k-neuron classifiers saw every row.",
        "",
    ]
    for sources, used in seen.items():
        parts = ", ".join(f"{method} {count:,}" for method, count in used.items() if method != "of")
        lines.append(f"- {sources}: {parts} of {used.get('of', 0):,} rows")
    return "\n".join(lines)


def _multi_source_section(results: dict[str, Any]) -> str:
    tables = []
    for norm in _normalisations(results):
        comparison = _multi_vs_single(results, norm)
        if not comparison:
            continue
        rows = [
            [
                _label(t),
                *_bold_best([multi, mean]),
                f"{_fmt(_value(best['scores']['selected']))} ({best['sources'][0]})" if best else MISSING,
            ]
            for t, multi, mean, best in comparison
        ]
        header = ["transfer", "multi-source", "mean single-source", "best single-source (from)"]
        tables += ["", f"### {norm.capitalize()} normalisation", "", *_table(header, rows)]
    if not tables:
        return "## Multi-source transfer\n\n_No multi-source rows in these results._"
    intro = (
        f"Selected-neuron {results.get('metric', 'score')} of each multi-source transfer against the "
        "single-source transfers into the same target."
    )
    return "\n".join(["## Multi-source transfer", "", intro, *tables])


def _fingerprint_section(results: dict[str, Any], plots: set[str]) -> str:
    lines = ["## Fingerprints", ""]
    fingerprints = results.get("fingerprints")
    if fingerprints:
        names = _datasets(results, fingerprints)
        layers = _layers(results, len(fingerprints[names[0]]))
        lines += [
            f"Percentage of each dataset's {_k_text(results)} selected neurons in each layer "
            "(layer 0 = embeddings).",
            "",
        ]
        header = ["dataset", *(f"L{layer}" for layer in layers)]
        rows = [[n, *(_fmt(v, PERCENT_DIGITS) for v in fingerprints[n])] for n in names]
        lines += _table(header, rows)
    else:
        lines.append("_No fingerprints in these results._")
    for name, alt in (
        ("fingerprints.png", "fingerprint heatmap"),
        ("selected_per_layer.png", "selected per layer"),
    ):
        if name in plots:
            lines += ["", f"![{alt}]({name})"]
    similarity = results.get("similarity", {})
    matrix = similarity.get("matrix")
    names = results.get("datasets", [])
    if matrix and len(names) == len(matrix):
        lines += ["", f"### Fingerprint similarity ({similarity.get('measure', 'unnamed measure')})", ""]
        lines += _table(
            ["", *names], [[n, *(_fmt(v) for v in row)] for n, row in zip(names, matrix, strict=True)]
        )
    else:
        lines += ["", "_No fingerprint similarity matrix (with dataset names) in these results._"]
    return "\n".join(lines)


def _correlation_section(results: dict[str, Any], plots: set[str]) -> str:
    lines = ["## Does fingerprint similarity predict transfer?", ""]
    corr = results.get("correlation")
    if not corr:
        lines.append("_No correlation in these results (the runner needs at least 3 pairs)._")
        return "\n".join(lines)
    pairs = corr.get("pairs", [])
    permutations = f", {corr['permutations']:,} permutations" if "permutations" in corr else ""
    lines.append(
        f"Spearman ρ = {_fmt(corr.get('spearman'), 2)} between fingerprint similarity "
        f"({corr.get('measure', 'unnamed measure')}) and transfer {results.get('metric', 'score')} "
        f"over {len(pairs)} ordered pairs (permutation p = {_p_text(corr.get('p_value'))}{permutations})."
    )
    control = corr.get("control")
    if control:
        lines += [
            "",
            "Control, from unlabelled statistics only: the distance from source to target "
            f"({control.get('distance', 'unnamed')}). Closeness (the negated distance) against transfer: "
            f"Spearman ρ = {_fmt(control.get('spearman_closeness'), 2)} "
            f"(p = {_p_text(control.get('p_value_closeness'))}). Fingerprint similarity against transfer "
            f"with the distance held fixed: partial ρ = {_fmt(control.get('partial_spearman'), 2)} "
            f"(p = {_p_text(control.get('p_value_partial'))}): what the fingerprints say about transfer "
            "beyond how far the domains' activations moved.",
        ]
    lines += [
        "",
        "> Caveat: the target's fingerprint is computed with the target's labels, so this correlation "
        "is an analysis tool, not part of the unsupervised transfer pipeline.",
    ]
    if "similarity_vs_transfer.png" in plots:
        lines += ["", "![fingerprint similarity against transfer](similarity_vs_transfer.png)"]
    return "\n".join(lines)


def _methods_section(results: dict[str, Any]) -> str:
    methods = _methods(results.get("transfers", []))
    given = results.get("baseline_descriptions", {})
    default = {m: method.description for m, method in METHODS.items()}
    described = [(m, given.get(m, default.get(m))) for m in dict.fromkeys([*methods, *given])]
    lines = [f"- **{METHOD_LABELS.get(m, m)}**: {d}" for m, d in described if d]
    return "## Methods\n\n" + "\n".join(lines) if lines else ""


def _notes_section(results: dict[str, Any]) -> str:
    notes = results.get("notes")
    return "## Notes\n\n" + "\n".join(f"- {n}" for n in notes) if notes else ""


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table, first column left-aligned, numbers right-aligned."""
    align = ["---", *("---:" for _ in header[1:])]
    return ["| " + " | ".join(r) + " |" for r in (header, align, *rows)]
