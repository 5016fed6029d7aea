"""The GPU self-check's steps, in order, each a subprocess with its own time limit inside one overall
deadline, and the summary they write (gpu_check.json)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import asdict
from pathlib import Path
from typing import Any

from neurosel.bench._gpu_plan import (
    BUDGETS,
    CUDA_TESTS,
    EXIT_FAILED,
    EXIT_NO_GPU,
    EXIT_OK,
    EXIT_USAGE,
    FULL,
    KILL_GRACE_S,
    MIN_STEP_S,
    REPO_ROOT,
    SMOKE,
    TAIL_LINES,
    Step,
)
from neurosel.bench._gpu_probe import NEEDED_MODULES, nvidia_smi, wheel_instructions
from neurosel.bench._gpu_results import extract_figures, figures, junit_counts, select_figures, stats_figures


class Check:
    """Runs the steps in order, within the overall deadline, and writes the summary."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sizes = SMOKE if args.smoke else FULL
        self.out = args.out_dir.resolve()
        self.started = time.monotonic()
        self.deadline = self.started + args.budget_s
        self.steps: list[Step] = []
        self.info: dict[str, Any] = {}
        self.env = dict(os.environ)
        self.log = None
        self.scratch: Path | None = None
        self.missing: list[str] = []  # of NEEDED_MODULES

    # each step's plumbing

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def say(self, text: str) -> None:
        print(text, flush=True)
        if self.log is not None:
            self.log.write(text + "\n")
            self.log.flush()

    def skip(self, name: str, reason: str) -> Step:
        step = Step(name, status="skipped", reason=reason)
        self.steps.append(step)
        self.say(f"== {name}: skipped ({reason})")
        return step

    def execute(self, name: str, command: list[str]) -> Step:
        """Run `command` in the repository root with the step's time limit; stream and keep its output."""
        budget = min(BUDGETS[name], self.remaining() - KILL_GRACE_S)
        if budget < MIN_STEP_S:
            return self.skip(
                name, f"out of time: {max(self.remaining(), 0):.0f} s left of the overall budget"
            )
        step = Step(name, budget_seconds=round(budget, 1), command=command)
        self.steps.append(step)
        self.say(f"== {name} (at most {budget:.0f} s): {' '.join(command)}")
        before = self.snapshot()
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        started = time.monotonic()
        proc = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
            start_new_session=True,  # its own process group, so a timeout ends all of it
        )
        reader = threading.Thread(target=self.pump, args=(proc, tail), daemon=True)
        reader.start()
        try:
            proc.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            self.stop(proc)
            step.status = "timed out"
            step.reason = f"stopped after its limit of {budget:.0f} s"
        reader.join(timeout=KILL_GRACE_S)
        step.seconds = round(time.monotonic() - started, 1)
        step.returncode = proc.returncode
        step.tail = list(tail)
        step.outputs = sorted(p.name for p in self.changed(before))
        if step.status == "pending":
            step.status = "passed" if proc.returncode == 0 else "failed"
            if step.status == "failed":
                step.reason = f"exit code {proc.returncode}"
        self.say(
            f"== {name}: {step.status} in {step.seconds:.1f} s" + (f" ({step.reason})" if step.reason else "")
        )
        return step

    def pump(self, proc: subprocess.Popen, tail: deque[str]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            tail.append(line)
            print(f"  {line}", flush=True)
            if self.log is not None:
                with contextlib.suppress(ValueError):  # the log closed after a timeout
                    self.log.write(f"  {line}\n")

    @staticmethod
    def stop(proc: subprocess.Popen) -> None:
        """End the step's process group: SIGTERM, then SIGKILL after a grace period."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=KILL_GRACE_S)
                return
            except subprocess.TimeoutExpired:
                continue

    def snapshot(self) -> dict[Path, float]:
        return {p: p.stat().st_mtime for p in self.out.glob("*.json")}

    def changed(self, before: dict[Path, float]) -> list[Path]:
        return [p for p, mtime in self.snapshot().items() if before.get(p) != mtime]

    def python(self, *args: str) -> list[str]:
        return [sys.executable, *args]

    # the run

    def run(self) -> int:
        self.out.mkdir(parents=True, exist_ok=True)
        self.scratch = self.args.scratch_dir or Path(tempfile.mkdtemp(prefix="gpu-check-"))
        self.scratch.mkdir(parents=True, exist_ok=True)
        code = EXIT_FAILED
        with open(self.out / "gpu_check.log", "w", encoding="utf-8") as self.log:
            try:
                code = self.steps_in_order()
            finally:
                if self.args.scratch_dir is None:
                    shutil.rmtree(self.scratch, ignore_errors=True)
                self.write_summary(code)
        return code

    def steps_in_order(self) -> int:
        mode = "smoke (CPU, tiny sizes: checks this script only)" if self.args.smoke else "GPU"
        self.say(f"gpu-check: {mode}; results in {self.out}; overall budget {self.args.budget_s:.0f} s")
        self.prepare_env()
        if self.args.wheels is not None and not self.install_wheels():
            return EXIT_USAGE
        gpu = self.environment()
        if gpu is None:  # zarr/numcodecs missing (2), or the probe failed or hung (1)
            return EXIT_USAGE if self.steps[-1].status == "failed" and self.missing else EXIT_FAILED
        if not gpu and not self.args.smoke:
            for name in ("pytest", "random-model", "extract", "stats", "select"):
                self.skip(name, "no GPU")
            self.say("no GPU: nothing to check (exit code 3); run it on a machine with an NVIDIA GPU")
            return EXIT_NO_GPU
        self.pytest()
        self.extract()
        self.stats()
        self.select()
        failed = [f"{s.name} ({s.status})" for s in self.steps if s.status in ("failed", "timed out")]
        skipped = [s.name for s in self.steps if s.status == "skipped"]
        total = time.monotonic() - self.started
        if failed or skipped:
            self.say(
                f"gpu-check: FAILED in {total:.0f} s: {', '.join(failed) or 'no step failed'}"
                + (f"; {', '.join(skipped)} skipped" if skipped else "")
            )
            return EXIT_FAILED
        self.say(f"gpu-check: passed in {total:.0f} s on {self.info.get('device_name') or 'the CPU'}")
        return EXIT_OK

    def prepare_env(self) -> None:
        """The steps' environment: this repository importable, offline, real GPU, quiet numba."""
        paths = [str(REPO_ROOT), *filter(None, self.env.get("PYTHONPATH", "").split(os.pathsep))]
        self.env.update(
            PYTHONPATH=os.pathsep.join(dict.fromkeys(paths)),
            PYTHONUNBUFFERED="1",
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            NUMBA_DISABLE_PERFORMANCE_WARNINGS="1",  # small test launches on a big GPU
        )
        self.env.pop("NUMBA_ENABLE_CUDASIM", None)  # the real device, never the simulator

    def install_wheels(self) -> bool:
        """pip install --target the carried wheels into the scratch folder, first on the PYTHONPATH."""
        assert self.scratch is not None
        wheels = sorted(str(p) for p in self.args.wheels.glob("*.whl"))
        if not wheels:
            self.say(f"--wheels {self.args.wheels}: no .whl files")
            return False
        site = self.scratch / "site"
        command = self.python(
            "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile", "--no-cache-dir",
            "--upgrade", "--target", str(site), *wheels,
        )  # fmt: skip
        self.say(f"== wheels: {' '.join(command)}")
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            self.say(f"pip install of the wheels failed:\n{done.stdout}{done.stderr}")
            return False
        self.env["PYTHONPATH"] = os.pathsep.join([str(site), self.env["PYTHONPATH"]])
        return True

    def environment(self) -> bool | None:
        """Probe the GPU pieces and packages: True with a usable GPU, False without, None if zarr or
        numcodecs is missing or the probe failed (nothing else can run)."""
        started = time.monotonic()
        step = Step("environment", budget_seconds=BUDGETS["environment"])
        self.steps.append(step)
        smi = nvidia_smi()
        self.say(f"== environment\n  nvidia-smi: {smi or 'not found'}")
        step.command = self.python("-m", "neurosel.bench.gpu_check", "--probe")
        try:
            done = subprocess.run(
                step.command, cwd=REPO_ROOT, env=self.env, capture_output=True, text=True,
                timeout=BUDGETS["environment"], check=False,
            )  # fmt: skip
            info = json.loads(done.stdout.strip().splitlines()[-1])
        except subprocess.TimeoutExpired:
            step.status, step.reason = "timed out", "the probe hung (GPU driver?)"
            info = {}
        except (json.JSONDecodeError, IndexError):
            step.status, step.reason = "failed", f"the probe failed: {done.stderr.strip()[-500:]}"
            info = {}
        info["nvidia_smi"] = smi
        self.info = info
        step.figures = info
        step.seconds = round(time.monotonic() - started, 1)
        for key in ("python", "torch", "torch_cuda", "device_name", "capability", "memory_gib", "cupy"):
            self.say(f"  {key}: {info.get(key)}")
        self.say(f"  cupy devices: {info.get('cupy_devices')}, numba.cuda: {info.get('numba_cuda')}")
        self.say(f"  zarr {info.get('zarr')}, numcodecs {info.get('numcodecs')}")
        if step.status != "pending":
            self.say(f"== environment: {step.status} ({step.reason})")
            return None
        self.missing = missing = [m for m in NEEDED_MODULES if not info.get(m)]
        if missing:
            step.status, step.reason = "failed", f"{' and '.join(missing)} not importable"
            python = ".".join(str(info.get("python") or platform.python_version()).split(".")[:2])
            self.say(wheel_instructions(python, missing))
            self.say(f"== environment: failed ({step.reason})")
            return None
        pieces = {
            "torch CUDA": info.get("torch_cuda"),
            "cupy": info.get("cupy_devices"),
            "numba.cuda": info.get("numba_cuda"),
        }
        gpu = any(pieces.values())
        absent = [name for name, ok in pieces.items() if not ok]
        if gpu and absent:
            step.status = "failed"
            step.reason = (
                f"a GPU is visible but {', '.join(absent)} cannot use it; the tests that need it skip"
            )
        else:
            step.status = "passed"
            step.reason = None if gpu else "no GPU visible"
        self.say(f"== environment: {step.status}" + (f" ({step.reason})" if step.reason else ""))
        return gpu

    def pytest(self) -> None:
        junit = self.out / "pytest_cuda.xml"
        command = self.python(
            "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "cuda",
            "-W", "ignore:Grid size", "-W", "ignore:Host array used in CUDA kernel",
            f"--junitxml={junit}", *CUDA_TESTS,
        )  # fmt: skip
        step = self.execute("pytest", command)
        if step.command is None:
            return
        counts = junit_counts(junit)
        step.figures = counts
        step.outputs = sorted({*step.outputs, junit.name} if junit.exists() else step.outputs)
        if step.status == "passed" and counts.get("skipped") and not self.args.smoke:
            step.status = "failed"
            step.reason = f"{counts['skipped']} CUDA tests skipped on a GPU machine: {counts['skip_reasons']}"
            self.say(f"== pytest: failed ({step.reason})")

    def extract(self) -> None:
        s = self.sizes
        model: list[str]
        if s.model is None and self.info.get("minilm_tokenizer"):
            model = ["--random-bert-base"]
            self.info["extract_model"] = "bench extract --random-bert-base (bert-base, MiniLM tokenizer)"
        else:
            assert self.scratch is not None
            path = self.scratch / "random-bert"
            command = self.python("-m", "neurosel.bench.gpu_check", "--make-random-bert", str(path))
            if s.model is not None:
                command += ["--model-json", json.dumps(s.model)]
            made = self.execute("random-model", command)
            if made.status != "passed":
                self.skip("extract", "no random model")
                return
            model = ["--model", str(path)]
            shape = "bert-base" if s.model is None else "tiny"
            self.info["extract_model"] = (
                f"{shape} BertModel, random weights, word-level vocabulary ({path.name})"
            )
        dataset = self.args.extract_dataset
        n = self.args.extract_n or (s.extract_n if dataset == "demo" else 2000)
        data_dir = ["--data-dir", str(self.args.data_dir.resolve())] if self.args.data_dir else []
        command = self.python(
            "-m", "neurosel.bench.extract", "--dataset", dataset, "--n", str(n), *data_dir,
            "--max-length", str(s.extract_max_length), *model, "--device", s.device,
            "--repeats", str(s.extract_repeats), "--neurox-n", str(s.extract_neurox_n),
            "--out-dir", str(self.out), "--scratch-dir", str(self.scratch / "extract"),
        )  # fmt: skip
        step = self.execute("extract", command)
        step.figures = figures(self.out, step.outputs, extract_figures)

    def stats(self) -> None:
        s = self.sizes
        assert self.scratch is not None
        command = self.python(
            "-m", "neurosel.bench.stats", "--rows", str(s.stats_rows), "--layers", str(s.stats_layers),
            "--hidden", str(s.stats_hidden), "--dtype", "float16", "--device", s.device,
            "--repeats", str(s.stats_repeats), "--out-dir", str(self.out),
            "--scratch-dir", str(self.scratch / "stats"), "--no-keep",
        )  # fmt: skip
        step = self.execute("stats", command)
        step.figures = figures(self.out, step.outputs, stats_figures)

    def select(self) -> None:
        s = self.sizes
        assert self.scratch is not None
        command = self.python(
            "-m", "neurosel.bench.solvers", "--dataset", "synthetic", "--synthetic-rows", str(s.select_rows),
            "--synthetic-layers", str(s.select_layers), "--synthetic-hidden", str(s.select_hidden),
            "--n-lambdas", str(s.select_lambdas), "--lambda-ratio", f"{s.select_lambda_ratio:g}",
            "--device", s.device, "--repeats", "1",
            "--solvers", "liblinear,cuml", "--tasks", "path", "--path-stride", str(s.select_stride),
            "--budget-s", f"{s.select_budget_s:g}", "--out-dir", str(self.out),
            "--scratch-dir", str(self.scratch / "select"),
        )  # fmt: skip
        step = self.execute("select", command)
        step.figures = figures(self.out, step.outputs, select_figures)

    def write_summary(self, code: int) -> None:
        summary = {
            "mode": "smoke" if self.args.smoke else "gpu",
            "exit_code": code,
            "passed": code == EXIT_OK,
            "device_name": self.info.get("device_name"),
            "seconds": round(time.monotonic() - self.started, 1),
            "budget_seconds": self.args.budget_s,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "hostname": platform.node(),
            "sizes": asdict(self.sizes),
            "environment": self.info,
            "steps": [asdict(s) for s in self.steps],
        }
        path = self.out / "gpu_check.json"
        path.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
        self.say(f"summary: {path}")
