# Two entry points: `make demo` (set up, run the main job) and `make test` (set up, run the tests).
VENV  ?= .venv
PY    := $(VENV)/bin/python
# A pinned torch: on CPU-only machines it resolves to the local CPU build instead of GBs of CUDA wheels.
TORCH ?= torch==2.13.0

.PHONY: venv demo test test-fast lint bench-extract clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev,demo]"
	# The newest transformers and Hugging Face's kernels, which it imports (>= 5.25): the resolver can
	# backtrack to an older transformers, and neurosel must work beside the newest (tests/package/test_packaging.py).
	$(PY) -m pip install -q --upgrade transformers kernels
	touch $@

demo: venv
	$(VENV)/bin/neurosel demo --out demo-out

test: venv
	$(PY) -m pytest -q
	# the numba.cuda kernels and the GPU statistics pass again, under the CUDA simulator (no GPU needed)
	NUMBA_ENABLE_CUDASIM=1 $(PY) -m pytest -q tests/contracts/test_cuda_kernels.py tests/contracts/test_passes.py

# Everyday runs: everything but the tests marked slow (under half the full run); `make test` and CI run all.
test-fast: venv
	$(PY) -m pytest -q -m "not slow"

lint: venv
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench-extract: venv
	$(PY) -m neurosel.bench.extract

clean:
	rm -rf demo-out bench/scratch

# GPU self-check (docs/gpu-check.md): the CUDA tests on the real device, then bench extract, stats and
# select, in under 8 minutes; results (JSON, log, JUnit) in $(OUT). No venv on GPU images: python3 there,
# with neurosel installed in place first (no dependencies, no network: the image has them).
# Extra options: GPU_CHECK_ARGS="--wheels .whl" installs carried zarr/numcodecs wheels first.
OUT    ?= bench/results/gpu
GPU_PY ?= $(shell test -x $(PY) && echo $(PY) || echo python3)
.PHONY: gpu-check
gpu-check:
	$(GPU_PY) -c "import neurosel" 2>/dev/null || $(GPU_PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(GPU_PY) -m neurosel.bench.gpu_check $(OUT) $(GPU_CHECK_ARGS)
