"""One single-source transfer job, timed by stage (`neurosel bench job`).

The job an experiment runs for one source: `neurosel.transfer` from SOURCE to every other store of an
experiment's stores folder, every baseline, 5 seeds, k = 10 … 1,000, the last-layer CLS stores when
the folder has them (`<domain>-cls.zarr`). Each run works on fresh copies of the stores with their
saved statistics, paths and stability frequencies removed, so every stage is computed, as on a
first run. Stages are timed with neurosel.timing.record(): the library marks each stage with
neurosel.timing.stage(name) (wall clock in the main thread; the classifier fits run on worker
threads inside "fits and scoring"); what no stage claims is "other". Stages named "… solved" (the
sparse path, the stability halves) are inside another stage and run only when a result is computed,
not read back from the store: they are reported but not counted again in "other".
--cached times a second run on the same copies, everything the first saved read back: what it still
spends is what a user's re-run spends.

--baseline DIR times the same job with the engine in DIR (a checkout of an older commit, e.g.
`git worktree add /tmp/old COMMIT`): the engines cannot share a process (one package name), so each
run is a fresh process of this script with DIR or this repository first on PYTHONPATH, old and new
alternating, --repeats times each; the medians and their ratio are reported. A stage an engine does
not have is absent from its split. JSON: bench/results/job_<source>_cpu_<host>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]  # the tree whose engine this file belongs to
# saved results removed from the copies (neurosel.store.DERIVED_GROUPS; written out: this script also
# runs older engines, which may lack the name)
DERIVED = ("stats", "importance", "stability", "classifiers")


NESTED = " solved"  # the suffix of stages inside another stage (a result computed, not read back)


def family_cpu_seconds() -> float:
    """CPU seconds of this process (all threads) and of its descendants still running (from
    /proc/<pid>/stat: user + system; a descendant that ended is not counted), where /proc exists;
    this process's alone elsewhere."""
    own = time.process_time()
    children: dict[int, list[int]] = {}
    cpu: dict[int, int] = {}  # clock ticks, user + system
    try:
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError):
                    fields = _proc_stat(int(entry))
                    children.setdefault(int(fields[1]), []).append(int(entry))
                    cpu[int(entry)] = int(fields[11]) + int(fields[12])
    except OSError:
        return own
    family, frontier = [], [os.getpid()]
    while frontier:
        found = children.get(frontier.pop(), [])
        family += found
        frontier += found
    return own + sum(cpu[pid] for pid in family) / os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (state first: ppid is [1], utime [11])."""
    with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
        text = f.read()
    return text[text.rindex(")") + 2 :].split()


def timed(transfer: Any, record: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """The seconds of one transfer call: total and by stage, "other" what no outer stage claims; `cpu`
    the CPU seconds of the process and of every process it started (the classifiers' workers,
    engine/crossdomain/_fit_pool.py), steadier than the wall clock on a shared machine."""
    started, cpu = time.perf_counter(), family_cpu_seconds()
    with record() as recorded:
        transfer(*args, **kwargs)
    total, cpu = time.perf_counter() - started, family_cpu_seconds() - cpu
    stages = dict(recorded or {})
    outer = sum(v for s, v in stages.items() if not s.endswith(NESTED))
    stages["other"] = max(total - outer, 0.0)
    return {"total": total, "cpu": cpu, "stages": stages}


def run_job(stores: Path, source: str, seeds: int, cached: bool = False) -> dict[str, Any]:
    """Time one job with the engine this process imports; the total and each stage in seconds
    (neurosel.timing's stages: load, path and statistics, fisher ranking, stability selection,
    scikit-learn recipe ranking, fits and scoring; none where the engine predates neurosel.timing).
    `cached`: then the same call again on the same copies, timed as "cached"."""
    import warnings

    import neurosel

    try:
        from neurosel.timing import record
    except ImportError:  # an older engine: the total only
        record = contextlib.nullcontext

    warnings.simplefilter("ignore")
    names = sorted(p.name[: -len(".zarr")] for p in stores.glob("*.zarr") if not p.name.endswith("-cls.zarr"))
    if source not in names:
        raise SystemExit(f"bench job: no {source}.zarr in {stores}; pass --source one of {', '.join(names)}")
    targets = [n for n in names if n != source]
    with tempfile.TemporaryDirectory(prefix="bench-job-") as tmp:
        copies = {}
        for name in [source, *targets]:
            for suffix in ("", "-cls"):
                origin = stores / f"{name}{suffix}.zarr"
                if origin.exists():
                    copies[name + suffix] = Path(tmp) / origin.name
                    shutil.copytree(origin, copies[name + suffix])
                    for derived in DERIVED:
                        shutil.rmtree(copies[name + suffix] / derived, ignore_errors=True)
        opened = {key: neurosel.open_store(path) for key, path in copies.items()}
        cls = {n: opened[f"{n}-cls"] for n in [source, *targets]} if f"{source}-cls" in opened else None
        call = ([opened[source]], [opened[t] for t in targets])
        options = {"names": [source, *targets], "k": 300, "seeds": seeds, "cls": cls, "device": "cpu"}
        run = timed(neurosel.transfer, record, *call, **options)
        if cached:  # the stores reopened, as a new process would: what the first run saved is read back
            again = {key: neurosel.open_store(path) for key, path in copies.items()}
            cls = {n: again[f"{n}-cls"] for n in [source, *targets]} if cls else None
            call = ([again[source]], [again[t] for t in targets])
            run["cached"] = timed(neurosel.transfer, record, *call, **{**options, "cls": cls})
    return {**run, "engine": str(Path(neurosel.__file__).resolve().parents[1])}


def in_subprocess(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One run of the job in a fresh process importing the engine in `root`: this file is run by
    path (runpy, so that it runs as it is whatever the tree holds) from `root`, which is also first
    on PYTHONPATH."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    argv = [
        "job",
        "--worker",
        str(args.stores.resolve()),
        "--source",
        args.source,
        "--seeds",
        str(args.seeds),
        *(["--cached"] if args.cached else []),
    ]
    script = str(Path(__file__).resolve())
    code = f"import runpy, sys; sys.argv = {argv!r}; runpy.run_path({script!r}, run_name='__main__')"
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bench job: the run with the engine in {root} failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median total and per-stage seconds over runs (and over their cached re-runs, when timed)."""
    stages = sorted({s for r in runs for s in r["stages"]})
    summary = {
        "total": statistics.median(r["total"] for r in runs),
        "totals": [r["total"] for r in runs],
        "cpu": statistics.median(r.get("cpu", float("nan")) for r in runs),
        "stages": {s: statistics.median(r["stages"].get(s, 0.0) for r in runs) for s in stages},
        "engine": runs[0]["engine"],
    }
    if all("cached" in r for r in runs):
        summary["cached"] = summarise([{**r["cached"], "engine": r["engine"]} for r in runs])
        del summary["cached"]["engine"]
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="neurosel bench job", description=__doc__.split("\n\n")[0])
    parser.add_argument("stores", type=Path, help="an experiment's stores folder (OUT/stores)")
    parser.add_argument("--source", required=True, help="the source domain (its store name)")
    parser.add_argument("--seeds", type=int, default=5, help="random-k seeds")
    parser.add_argument("--baseline", type=Path, default=None, help="a source tree with an older engine")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each engine; medians count")
    parser.add_argument("--cached", action="store_true", help="also time a re-run with everything saved")
    parser.add_argument("--out-dir", type=Path, default=None, help="reports (JSON; default bench/results)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:  # one timed run, JSON on the last stdout line
        print(json.dumps(run_job(args.stores, args.source, args.seeds, args.cached)))
        return 0
    load_start = os.getloadavg()  # 1, 5, 15 min: above the cores, the machine is shared with others
    runs: dict[str, list[dict[str, Any]]] = {"engine": [], "baseline": []}
    for _ in range(args.repeats):
        if args.baseline is not None:
            runs["baseline"].append(in_subprocess(args.baseline.resolve(), args))
        runs["engine"].append(in_subprocess(REPO, args))
    report: dict[str, Any] = {
        "parameters": {"stores": str(args.stores), "source": args.source, "seeds": args.seeds,
                       "repeats": args.repeats, "baseline": str(args.baseline) if args.baseline else None,
                       "cached": args.cached, "cores": os.cpu_count(),
                       "load_average": {"start": load_start, "end": os.getloadavg()}},
        "engine": summarise(runs["engine"]),
    }  # fmt: skip
    if args.baseline is not None:  # which commit the baseline tree is, when it is a git checkout
        head = subprocess.run(
            ["git", "-C", str(args.baseline), "rev-parse", "HEAD"], capture_output=True, text=True
        )
        report["parameters"]["baseline_commit"] = head.stdout.strip() or None
    if runs["baseline"]:
        report["baseline"] = summarise(runs["baseline"])
        report["speedup"] = report["baseline"]["total"] / report["engine"]["total"]
        report["speedup_cpu"] = report["baseline"]["cpu"] / report["engine"]["cpu"]
        if "cached" in report["baseline"] and "cached" in report["engine"]:
            report["speedup_cached_cpu"] = (
                report["baseline"]["cached"]["cpu"] / report["engine"]["cached"]["cpu"]
            )
            report["speedup_cached"] = (
                report["baseline"]["cached"]["total"] / report["engine"]["cached"]["total"]
            )
    from neurosel.bench._harness import RESULTS_DIR, write_report  # not at import: workers run by path

    out = write_report(report, args.out_dir or RESULTS_DIR, f"job_{args.source}", "cpu")
    for who in ("baseline", "engine"):
        for run, label in ((report.get(who), who), (report.get(who, {}).get("cached"), f"{who} re-run")):
            if run:
                split = ", ".join(f"{s} {v:.1f}" for s, v in run["stages"].items())
                print(f"{label:<16} {run['total']:6.1f} s (CPU {run['cpu']:.1f} s) | {split}")
    for key, what in (("speedup", "first run"), ("speedup_cached", "cached re-run")):
        if key in report:
            cpu = report[f"{key}_cpu"]
            print(f"engine speed-up over the baseline, {what}: {report[key]:.2f}x (CPU seconds {cpu:.2f}x)")
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
