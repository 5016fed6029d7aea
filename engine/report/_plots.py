"""The report's matplotlib plots: one function per PNG, each returning a Figure or None when the
results lack what it draws."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Annotation
from matplotlib.ticker import MaxNLocator, NullLocator
from matplotlib.transforms import Bbox

from neurosel.report._cells import (
    METHOD_LABELS,
    PERCENT_DIGITS,
    _datasets,
    _fmt,
    _k_text,
    _layers,
    _mean,
    _mean_score,
    _normalisations,
    _p_text,
    _transfers,
    _value,
)

DPI = 150
PNG_METADATA = {"Software": None}  # no version string in the PNG, so reruns are byte-identical
STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "legend.frameon": False,
}
PALETTE = matplotlib.colormaps["tab10"]
LINESTYLES = {"source": "-", "target": "--"}
# where a scatter label may go, in points from its point, nearest first; and how much worse a
# label is for each pixel outside the axes (where it could cover the legend) than for one overlapping
LABEL_OFFSETS = [
    *((dx, dy) for dy in (2, -2) for dx in (5, -5)),
    (0, 6),
    (0, -6),
    *((dx, dy) for dy in (9, -9, 16, -16) for dx in (5, -5)),
    (0, 13),
    (0, -13),
]
OUTSIDE_PENALTY = 10.0
PLOT_FILES = (
    "fingerprints.png",
    "selected_per_layer.png",
    "accuracy_vs_k.png",
    "similarity_vs_transfer.png",
)


def write_plots(results: dict[str, Any], out: Path) -> set[str]:
    """Draw every plot the results allow into `out` and return the names of the files written; a
    plot the results no longer allow is removed (a stale plot from an earlier render would mislead)."""
    plots = set()
    with matplotlib.rc_context(STYLE):
        for name, draw in zip(PLOT_FILES, _PLOTTERS, strict=True):
            fig = draw(results)
            if fig is None:
                (out / name).unlink(missing_ok=True)
                continue
            fig.savefig(out / name, dpi=DPI, metadata=PNG_METADATA)
            plots.add(name)
    return plots


def _plot_fingerprints(results: dict[str, Any]) -> Figure | None:
    """Heatmap datasets × layers of the fingerprint percentages, annotated."""
    fingerprints = results.get("fingerprints")
    if not fingerprints:
        return None
    names = _datasets(results, fingerprints)
    data = np.array([fingerprints[n] for n in names], dtype=float)
    layers = _layers(results, data.shape[1])
    fig = Figure(figsize=(2.4 + 0.7 * len(layers), 1.4 + 0.45 * len(names)), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(data, cmap="viridis", aspect="auto", vmin=0)
    for (i, j), v in np.ndenumerate(data):
        r, g, b, _ = image.cmap(image.norm(v))
        dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
        ax.text(j, i, _fmt(v, PERCENT_DIGITS), ha="center", va="center", color="white" if dark else "black")
    ax.set_xticks(range(len(layers)), [str(layer) for layer in layers])
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("layer (0 = embeddings)")
    ax.set_title(f"Fingerprints: % of the {_k_text(results)} selected neurons per layer")
    ax.spines[:].set_visible(False)
    fig.colorbar(image, ax=ax, label="selected neurons in the layer (%)")
    return fig


def _plot_selected_per_layer(results: dict[str, Any]) -> Figure | None:
    """Grouped bars: one group per layer, one bar per dataset."""
    counts = results.get("selected_per_layer")
    if not counts:
        return None
    names = _datasets(results, counts)
    layers = _layers(results, len(counts[names[0]]))
    fig = Figure(figsize=(max(6.0, 1.8 + 0.9 * len(layers)), 3.6), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    width = 0.8 / len(names)
    x = np.arange(len(layers))
    for i, name in enumerate(names):
        ax.bar(x + (i - (len(names) - 1) / 2) * width, counts[name], width, label=name, color=PALETTE(i % 10))
    ax.set_xticks(x, [str(layer) for layer in layers])
    ax.set_xlabel("layer (0 = embeddings)")
    ax.set_ylabel("selected neurons (count)")
    ax.yaxis.grid(True, color="0.9")
    ax.set_axisbelow(True)
    ax.set_title(f"Where each dataset's {_k_text(results)} selected neurons lie")
    fig.legend(title="dataset", loc="outside right upper")
    return fig


def _plot_accuracy_vs_k(results: dict[str, Any]) -> Figure | None:
    """Mean over single-source pairs of each method's score against k; line style = normalisation."""
    curves = []
    for norm in _normalisations(results):
        rows = [t for t in _transfers(results, norm, single=True) if t.get("by_k")]
        if rows:
            curves.append((norm, rows))
    if not curves:
        return None
    metric = results.get("metric", "score")
    fig = Figure(figsize=(8.5, 4.4), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    ticks: set[int] = set()
    legend: dict[str, Line2D] = {}  # one entry per method (colour), then one per normalisation (style)
    for norm, rows in curves:
        style = LINESTYLES[norm]
        for colour, method, marker in ((0, "selected", "o"), (1, "random", "^"), (2, "stats_topk", "s")):
            ks, means, stds = _by_k_means(rows, method)
            if not ks:
                continue
            ticks.update(ks)
            ax.plot(ks, means, style, color=PALETTE(colour), marker=marker, markersize=4)
            label = METHOD_LABELS[method].replace(" ± sd", "")
            if stds is not None:
                low, high = np.subtract(means, stds), np.add(means, stds)
                ax.fill_between(ks, low, high, color=PALETTE(colour), alpha=0.12, linewidth=0)
                label += " (band: ± 1 sd over seeds)"
            legend[label] = Line2D([], [], color=PALETTE(colour), marker=marker, markersize=4)
        all_mean = _mean(_value(t["scores"].get("all")) for t in rows)
        if all_mean is not None:
            ax.axhline(all_mean, color="0.35", linestyle=style, linewidth=1.2)
            legend["all neurons"] = Line2D([], [], color="0.35", linewidth=1.2)
    if "k" in results:
        ax.axvline(results["k"], color="0.6", linestyle=":", linewidth=1)
        legend[f"headline {_k_text(results)}"] = Line2D([], [], color="0.6", linestyle=":", linewidth=1)
    for norm, _ in curves:
        legend[f"{norm} normalisation"] = Line2D([], [], color="black", linestyle=LINESTYLES[norm])
    ax.set_xscale("log")
    ax.set_xticks(sorted(ticks), [f"{k:,}" for k in sorted(ticks)])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("k (neurons used, log scale)")
    ax.set_ylabel(f"{metric} on the target")
    sizes = "/".join(dict.fromkeys(str(len(rows)) for _, rows in curves))
    ax.set_title(f"{metric.capitalize()} against k, mean over {sizes} single-source pairs")
    fig.legend(legend.values(), legend.keys(), loc="outside right upper")
    return fig


def _by_k_means(rows: list[dict[str, Any]], method: str) -> tuple[list[int], list[float], list[float] | None]:
    """ks and the mean over rows of a method's score per k (and of its seed sd, when it has one)."""
    tables = [t["by_k"][method] for t in rows if isinstance(t["by_k"].get(method), dict)]
    ks = sorted({int(k) for table in tables for k in table})
    means, stds = [], []
    for k in ks:
        scores = [table[str(k)] for table in tables if str(k) in table]
        means.append(_value(_mean_score(scores)))
        stds.append(_mean(s.get("std") for s in scores if isinstance(s, dict)))
    kept = [i for i, m in enumerate(means) if m is not None]
    spread = None if any(stds[i] is None for i in kept) else [stds[i] for i in kept]
    return [ks[i] for i in kept], [means[i] for i in kept], spread


def _plot_similarity_vs_transfer(results: dict[str, Any]) -> Figure | None:
    """Scatter of fingerprint similarity against transfer score over ordered pairs, labelled src→tgt."""
    corr = results.get("correlation", {})
    pairs = corr.get("pairs")
    if not pairs:
        return None
    fig = Figure(figsize=(6.8 + 0.06 * len(pairs), 4.6 + 0.04 * len(pairs)), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    targets = _datasets(results, dict.fromkeys(p.get("target", "?") for p in pairs))
    for i, target in enumerate(targets):
        mine = [p for p in pairs if p.get("target", "?") == target]
        xs, ys = [p["similarity"] for p in mine], [p["score"] for p in mine]
        ax.scatter(xs, ys, s=28, color=PALETTE(i % 10), label=target, zorder=3)
    ax.margins(x=0.15, y=0.08)  # room for the labels of the outermost points
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6))
    ax.set_xlabel(f"fingerprint similarity ({corr.get('measure', 'unnamed measure')})")
    ax.set_ylabel(f"transfer {results.get('metric', 'score')} on the target")
    ax.set_title(
        f"Fingerprint similarity against transfer ({len(pairs)} ordered pairs)\n"
        f"Spearman ρ = {_fmt(corr.get('spearman'), 2)}, permutation p = {_p_text(corr.get('p_value'))}"
    )
    fig.legend(title="target", loc="outside right upper")
    points = [(p["similarity"], p["score"]) for p in pairs]
    _place_labels(fig, ax, points, [f"{p.get('source', '?')}→{p.get('target', '?')}" for p in pairs])
    return fig


def _place_labels(fig: Figure, ax: Axes, points: list[tuple[float, float]], labels: list[str]) -> None:
    """Put each label at the offset around its point that overlaps points, earlier labels and the
    outside of the axes least: symmetric similarities put X→Y and Y→X at the same x."""
    fig.draw_without_rendering()  # settle the layout: display coordinates are final from here
    pad = 4 * fig.dpi / 72
    taken = [Bbox.from_extents(x - pad, y - pad, x + pad, y + pad) for x, y in ax.transData.transform(points)]
    for point, label in zip(points, labels, strict=True):
        best: tuple[float, Annotation, Bbox] | None = None
        for dx, dy in LABEL_OFFSETS:
            text = ax.annotate(
                label,
                point,
                xytext=(dx, dy),
                textcoords="offset points",
                fontsize=7,
                ha="left" if dx > 0 else "right" if dx < 0 else "center",
                va="bottom" if dy > 0 else "top" if dy < 0 else "center",
            )
            text.set_in_layout(False)
            box = text.get_window_extent()
            outside = box.width * box.height - _overlap(box, ax.bbox)
            cost = sum(_overlap(box, other) for other in taken) + OUTSIDE_PENALTY * outside
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, text, box)
            else:
                text.remove()
            if cost == 0:
                break
        taken.append(best[2])


def _overlap(a: Bbox, b: Bbox) -> float:
    both = Bbox.intersection(a, b)
    return 0.0 if both is None else both.width * both.height


_PLOTTERS = (_plot_fingerprints, _plot_selected_per_layer, _plot_accuracy_vs_k, _plot_similarity_vs_transfer)
