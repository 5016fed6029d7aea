"""The GPU self-check reads its steps' results back: JUnit counts and each benchmark JSON's key figures."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any


def junit_counts(path: Path) -> dict[str, Any]:
    """Tests, failures, errors and skips of a JUnit file, and the skip reasons."""
    if not path.exists():
        return {}
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        return {"error": "unreadable JUnit file"}
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    reasons: dict[str, int] = {}
    for case in root.iter("testcase"):
        for skipped in case.iter("skipped"):
            reason = (skipped.get("message") or "").strip()
            reasons[reason] = reasons.get(reason, 0) + 1
    counts["skip_reasons"] = reasons
    return counts


def figures(out: Path, names: list[str], pick: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """The key figures of the benchmark JSON a step wrote (empty if it wrote none)."""
    found: dict[str, Any] = {}
    for name in names:
        if not name.endswith(".json") or name == "gpu_check.json":
            continue
        try:
            found[name] = pick(json.loads((out / name).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as e:
            found[name] = {"unreadable": f"{type(e).__name__}: {e}"}
    return found


def extract_figures(r: dict[str, Any]) -> dict[str, Any]:
    engine = r["results"].get("engine", {})
    return {
        "device_name": r["environment"].get("device_name"),
        "engine_examples_per_s": engine.get("examples_per_s"),
        "engine_tokens_per_s": engine.get("tokens_per_s"),
        "ratios": r.get("ratios"),
        "mfu_useful": r.get("mfu", {}).get("engine", {}).get("mfu_useful"),
        "correctness_passed": r["correctness"].get("passed"),
        # the first layers only against all of them (the forward stops early): ratio and value check
        "subset_layers_ratio": r.get("subset_layers", {}).get("ratio"),
        "subset_layers_passed": r.get("subset_layers", {}).get("passed"),
    }


def stats_figures(r: dict[str, Any]) -> dict[str, Any]:
    cuda = r.get("cuda", {})
    return {
        "device_name": r["environment"].get("device_name"),
        "stats_gb_per_s": r["results"]["stats"]["gb_per_s"],
        "read_gb_per_s": r["results"]["read"]["gb_per_s"],
        "moments_gb_per_s": cuda.get("moments_gb_per_s"),
        "moments_vs_d2d": cuda.get("moments_vs_d2d"),
        "targets": r.get("targets"),
        "correctness_passed": r["correctness"]["passed"],
    }


def select_figures(r: dict[str, Any]) -> dict[str, Any]:
    path = r["engine"]["path"]
    return {
        "device_name": r["environment"].get("device_name"),
        "engine_seconds": path["seconds"],
        "design": path["meta"].get("design"),
        "backend": path["meta"].get("backend"),
        "certified": f"{path['certified']}/{len(path['gaps'])}",
        "ratios": r.get("ratios"),
        "correctness_passed": r["correctness"]["passed"],
    }
