# Two commands from a fresh machine:
#   make demo   - embedded Temporal server + worker, ingest the corpora, run a research flow
#   make test   - lint, type-check, the docs check and the test suite on the real dev server
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
QUESTION ?= How do idempotency keys make retries safe?
# corpus/<name> is ingested into namespace <name> (contracts/routes.toml describes each).
CORPORA := demo demo-v1 demo-ko postmortems
# The project's packages, compiled to bytecode at install and again before a bench
# run: the workflow sandbox re-imports a workflow's module for every run, and without
# current bytecode (where PYTHONDONTWRITEBYTECODE is set, or after an edit) each run
# compiles it again (about 2 ms).
PACKAGES := activities keel workflows

# llama-cpp-python compiles from source. A portable CPU build (AVX2, no -march=native):
# native builds pick up AMX on CPUs whose virtual machines then fault inside it.
LLAMA_VERSION := 0.3.36
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF
LLAMA_WHEELS ?= $(HOME)/.cache/keel/wheels/llama-$(LLAMA_VERSION)-portable

.PHONY: install demo server worker stop test lint docs-check histories bench chaos soak canary-scan eval clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@if ! ls $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1; then \
	  echo "building llama-cpp-python $(LLAMA_VERSION) once (about 10 minutes on 2 cores)"; \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip wheel -q --no-cache-dir --no-deps \
	    -w $(LLAMA_WHEELS) llama-cpp-python==$(LLAMA_VERSION); \
	fi
	$(PY) -m pip install -q --find-links $(LLAMA_WHEELS) -e '.[dev]'
	$(PY) -m compileall -q $(PACKAGES) >/dev/null
	touch $@

demo: install
	$(PY) devserver.py start --with-worker
	@for corpus in $(CORPORA); do \
	  $(PY) client.py ingest corpus/$$corpus --corpus $$corpus || exit 1; \
	done
	$(PY) client.py research "$(QUESTION)"

server: install
	$(PY) devserver.py start

worker: install
	$(PY) worker.py

stop:
	$(PY) devserver.py stop

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

# Every command shown in README.md, docs/*.md and harness/bench/README.md runs against a dev
# server of the check's own, or is parsed where it cannot run (harness/docs_check.py).
docs-check: install
	$(PY) -m harness.docs_check

# pytest exits 5 when it collected nothing: a suite that ran no test has failed.
test: lint docs-check
	@set +e; $(PY) -m pytest; code=$$?; \
	if [ $$code -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$code

histories: install
	$(PY) -m tests.histories.record

# The benchmark suite (harness/bench/): its peers (LangGraph, matplotlib, psutil) are in the
# `bench` extra, installed here only. BENCH_ARGS passes flags: make bench BENCH_ARGS="--only step".
$(VENV)/.installed-bench: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install -q --find-links $(LLAMA_WHEELS) -e '.[dev,bench]'
	touch $@

# The peers' own tests first (deselected by make test, which lacks the extra): a
# bench whose baselines take another path than the workflow would compare nothing.
bench: $(VENV)/.installed-bench
	$(PY) -m pytest -q -m bench tests/test_bench.py
	$(PY) -m compileall -q $(PACKAGES) >/dev/null
	$(PY) -m harness.bench $(BENCH_ARGS)

# The evaluation (harness/eval/): the eval set through the real flows on the running stack
# (`make demo`, or `make server` and `make worker`: the server at TEMPORAL_ADDRESS, the
# worker on KEEL_TASK_QUEUE), figures per provider and flow, as a table and JSON.
# EVAL_ARGS passes flags: make eval EVAL_ARGS="--provider openai --model <name> --limit 10".
EVAL_ARGS ?= --provider local --flow research
EVAL_OUT ?= eval-$(shell date -u +%Y%m%dT%H%M%S).json
eval: install
	$(PY) -m harness.eval --stack --out $(EVAL_OUT) $(EVAL_ARGS)

# The soak (harness/soak/): a 100-call conversation near 200k tokens and a 1,000-turn agent loop,
# every run held to the history's limits. SOAK_ARGS passes flags.
soak: install
	$(PY) -m harness.soak $(SOAK_ARGS)

# The randomized fault suite (harness/chaos/): real server, workers and ticket service, faults
# drawn from each seed. CHAOS_ARGS passes flags: make chaos CHAOS_ARGS="--seeds 200".
CHAOS_ARGS ?= --seeds 10
chaos: install
	$(PY) -m harness.chaos $(CHAOS_ARGS)

# Strings that must never be readable without the keys (a fake API key, a phrase from a
# restricted document), one per line in CANARIES: found in .data/temporal.db, its WAL,
# .data/*.log or any history as `temporal` shows it without a codec -> exit 1.
# See docs/security.md. CANARY_ARGS passes flags: CANARY_ARGS="--file cli-output.txt".
CANARIES ?= canaries.txt
canary-scan: install
	$(PY) -m keel.infra.canary --strings-file $(CANARIES) --all-workflows $(CANARY_ARGS)

clean:
	rm -rf $(VENV) .data
