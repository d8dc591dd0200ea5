# Convenience entry points for the mmtrace reproducibility artifact.
#
#   make run    create .venv (if needed) and run the full Snakemake workflow
#   make test   create .venv (if needed), run pytest, lint and dry-run the workflow
#
# Variables (override on the command line, e.g. `make run SMK_ARGS="-n"`):
#   PYTHON       interpreter used to create the virtualenv (needs >= 3.10)
#   TORCH_SPEC   torch requirement installed first, on its own (one pip requirement,
#                must satisfy pyproject's torch>=2.4,<2.14). The default resolves to
#                the local CPU wheel on the CI machine; on a GPU host plain PyPI gives a
#                CUDA build. To pick a specific CUDA build use pip's environment, e.g.
#                PIP_INDEX_URL=https://download.pytorch.org/whl/cu128 make venv
#   SMK_ARGS     extra arguments for `snakemake` in `make run`
#   PYTEST_ARGS  extra arguments for pytest in `make test` (e.g. -m "not slow")

PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
SMK_ARGS ?=
PYTEST_ARGS ?=

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: all run test venv lint clean-results

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
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	$(BIN)/snakemake --lint
	$(BIN)/snakemake -n --nolock --cores 1 --quiet
	$(BIN)/snakemake -n --nolock --quiet --workflow-profile profiles/slurm
	$(BIN)/snakemake -n --nolock --cores 1 --quiet --config world=paper
	$(BIN)/snakemake -n --nolock --quiet --workflow-profile profiles/slurm --config world=paper
	$(BIN)/snakemake --lint --config world=paper

lint: $(STAMP)
	$(BIN)/ruff check src tests rules .ci
	$(BIN)/ruff format --check src tests rules .ci
	$(BIN)/snakefmt --check Snakefile rules
	$(BIN)/snakemake --lint

# Removes workflow outputs that are NOT committed (results/, logs/, ci_out/,
# Snakemake's metadata). The committed figures/ and paper_tables/ are kept.
clean-results:
	rm -rf results logs ci_out benchmarks/out .snakemake
