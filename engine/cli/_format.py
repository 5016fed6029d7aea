"""The lines that several commands print: a store (extract, info), a statistics pass (stats, demo),
a verified store (info, verify), and the one-line messages of errors (`main`). A command's own
lines are in its module."""

from __future__ import annotations

import errno
import sys

import numpy as np

# What to do about an OSError while writing outputs, by errno (see `describe_os_error`).
OS_ERROR_FIXES = {
    errno.EACCES: "check its permissions or choose another path",
    errno.EPERM: "check its permissions or choose another path",
    errno.EROFS: "the file system is read-only; choose another path",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
    errno.EISDIR: "it is a folder; pass a file path",
    errno.EEXIST: "it already exists; remove it or choose another path",
    errno.ENOSPC: "free space or choose another path",
    errno.EDQUOT: "free space (disk quota) or choose another path",
}


def describe_store(store) -> str:
    """A few human lines about a store: shape, model, labels, progress, anomalies."""
    m = store.meta
    lines = [
        f"store     {store.path}",
        f"shape     {store.n} examples × {len(store.layers)} layers × {store.hidden} units "
        f"({m['dtype']}, {m['pooling']} pooling, max_length {m['max_length']})",
        f"layers    {list(store.layers)}",
        f"site      {m.get('site', 'hidden')}" + (f" ({m['site_module']})" if m.get("site_module") else ""),
        f"model     {m['model_id']} ({m.get('model_type', 'encoder')}, weights {m['weights_hash'][:12]}, "
        f"{m['precision']})",
        f"state     {'complete' if store.complete else 'incomplete'}, "
        f"{m['rows_committed']}/{store.n} rows committed",
    ]
    labels = store.labels
    if labels is not None and m["label_kind"] == "class":
        names = m.get("label_names") or []
        values, counts = _counts(labels)
        parts = [f"{names[v] if v < len(names) else v}: {c}" for v, c in zip(values, counts, strict=True)]
        lines.append(f"labels    {len(values)} classes ({', '.join(parts)})")
    elif labels is not None:
        lines.append(f"labels    numeric, range {labels.min():g} … {labels.max():g}")
    else:
        lines.append("labels    none")
    if m["pooling"] == "tokens":
        lines.append(f"tokens    {m['n_tokens']}")
    if m["nonfinite_values"]:
        lines.append(
            f"nonfinite {m['nonfinite_values']} values in {m['nonfinite_row_count']} rows "
            f"(first rows {m['nonfinite_rows'][:10]})"
        )
    return "\n".join(lines)


def _counts(labels):
    return np.unique(labels, return_counts=True)


def describe_stats(store, stats, top: int) -> str:
    """A summary of the pass and the most distinctive neurons by the main score for the labels."""
    m = stats.meta
    lines = [
        f"stats     {store.path}/stats/{m['key']}",
        f"pass      {m['activation_rows']} rows on {m['device']} in {m['seconds']:.2f} s "
        f"({m['gb_per_s']:.2f} GB/s of activations)",
    ]
    if int(stats.nonfinite.sum()):
        lines.append(f"nonfinite {int(stats.nonfinite.sum())} values left out")
    if stats.auroc is not None:
        name, score = "|AUROC − 0.5|", np.abs(stats.auroc - 0.5)
    elif stats.anova_f is not None:
        name, score = "ANOVA F", stats.anova_f
    elif stats.pearson is not None:
        name, score = "|Pearson r|", np.abs(stats.pearson)
    else:
        name, score = "standard deviation", stats.std
    order = np.argsort(-np.nan_to_num(score.ravel(), nan=-np.inf), kind="stable")[:top]
    lines.append(f"top {len(order)} neurons by {name}:")
    lines.append(f"  {'layer':>5} {'unit':>5} {'score':>10} {'mean':>10} {'std':>10}")
    for flat in order:
        pos, unit = divmod(int(flat), store.hidden)
        lines.append(
            f"  {store.layers[pos]:>5} {unit:>5} {score.ravel()[flat]:>10.4g} "
            f"{stats.mean.ravel()[flat]:>10.4g} {stats.std.ravel()[flat]:>10.4g}"
        )
    return "\n".join(lines)


def describe_verify(report) -> str:
    """The verify summary of a sound store: what was checked, and any notes."""
    lines = [f"verified  {report.path}: {report.arrays} arrays, {report.files} files, no problems"]
    lines += [f"note      {note}" for note in report.notes]
    return "\n".join(lines)


def print_problems(report) -> int:
    """Each problem on its own line on stderr, and exit code 2 (the store cannot be trusted)."""
    for problem in report.problems:
        print(f"neurosel: error: {one_line(problem)}", file=sys.stderr)
    return 2


def describe_os_error(error: OSError) -> str | None:
    """`<path>: <reason>; <fix>` for an OSError that bad output paths cause (a missing permission,
    a file where a folder goes, a full disk), else None (an OSError elsewhere is a bug)."""
    fix = OS_ERROR_FIXES.get(error.errno) if error.errno is not None else None
    if fix is None:
        return None
    where = error.filename if error.filename is not None else "output"
    reason = error.strerror or type(error).__name__
    return f"{where}: {reason[:1].lower() + reason[1:]}; {fix}"


def one_line(message: str) -> str:
    """An error message as one line (a multi-line message is joined with spaces)."""
    return " ".join(line.strip() for line in str(message).splitlines() if line.strip())
