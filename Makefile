# Two commands do everything on a fresh machine: `make table` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# The stamp names a hash of everything that decides the environment, so editing a pin
# reinstalls and a second `make install` is a no-op.
REQ_HASH := $(shell cat requirements/*.txt requirements/torch.sh pyproject.toml 2>/dev/null | sha256sum | cut -c1-12)
# Which torch build: auto (pip's choice: a configured local wheel, else PyPI's), cpu (PyTorch's
# CPU wheel index) or cuda (PyPI's CUDA build). Part of the stamp, so changing it reinstalls.
TORCH ?= auto
STAMP := $(VENV)/.installed-$(REQ_HASH)-torch-$(TORCH)
PROFILE ?= demo
TASK ?= $(if $(filter demo smoke,$(PROFILE)),ToyVelocity,HalfCheetahVelocity)
export OMP_NUM_THREADS ?= 1
export DSRL_SUPPRESS_IMPORT_ERROR = 1
export WANDB_MODE ?= disabled

.PHONY: install test test-deps test-fast test-slurm slurm-up slurm-down lint format table \
        figure-cost-limits figure-budget curves diff bench sweep status data data-all sim-smoke clean help \
        check-pypi

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

install: $(STAMP) ## build .venv with the pinned version set [TORCH=auto|cpu|cuda] (idempotent)

# One line per step. `--no-warn-conflicts`: the --no-deps packages (requirements/nodeps.txt)
# declare pins that cannot hold on Python 3.11 (osrl-lib: torch~=1.13); pip would print a page
# of "incompatible" warnings that read like a failure. The lock file is what is installed.
PIP := $(PY) -m pip install -q --disable-pip-version-check --no-warn-conflicts
QUIET := 2>&1 | { grep -v -e "^WARNING: Location 'file:" -e '^$$' || true; }
$(STAMP):
	@set -eo pipefail; start=$$(date +%s); \
	echo "[install 1/5] venv $(VENV) (python 3.11)"; \
	test -x $(PY) || $(PYTHON) -m venv $(VENV); \
	echo "[install 2/5] torch $$(sed -n 's/^torch==//p' requirements/lock.txt) (TORCH=$(TORCH))"; \
	bash requirements/torch.sh "$(TORCH)" $(PY); \
	echo "[install 3/5] packages installed without their dependencies (requirements/nodeps.txt)"; \
	$(PIP) --no-deps -r requirements/nodeps.txt $(QUIET); \
	echo "[install 4/5] runtime and dev packages (pinned by requirements/lock.txt)"; \
	$(PIP) -c requirements/lock.txt -r requirements/runtime.txt -r requirements/dev.txt $(QUIET); \
	echo "[install 5/5] this project (editable)"; \
	$(PIP) --no-deps --no-build-isolation -e . $(QUIET); \
	rm -f $(VENV)/.installed-*; touch $@; \
	echo "installed: $$($(PY) -m pip list --format=freeze 2>/dev/null | wc -l) packages in $(VENV)" \
	  "(torch $$($(PY) -c 'import torch; print(torch.__version__, "CUDA" if torch.version.cuda else "CPU", "build, cuda available:", torch.cuda.is_available())'))" \
	  "in $$(( $$(date +%s) - start )) s"

test-deps: ## Debian packages the tests need (pdflatex for the table test)
	@command -v pdflatex >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends texlive-latex-base texlive-latex-recommended >/dev/null; \
	  else echo "pdflatex missing and cannot apt-get: the LaTeX compile test will be skipped"; fi; }

test: install test-deps lint ## lint, then every test (Slurm ones when root and apt allow)
	@if [ "$$(id -u)" != 0 ]; then echo "note: Slurm tests SKIPPED: starting tests/slurm/up.sh needs root"; \
	elif ! command -v slurmctld >/dev/null && ! command -v apt-get >/dev/null; then \
	  echo "note: Slurm tests SKIPPED: Slurm not installed and no apt-get"; \
	else echo "Slurm tests: a throw-away local cluster will be started (tests/slurm/up.sh)"; fi
	$(PY) -m pytest

check-pypi: install ## resolve the whole install set against PyPI alone (no local wheels; ~1 min)
	$(PY) requirements/check_pypi.py

test-slurm: install ## Slurm integration tests on a throw-away local cluster (root; apt-installs Slurm)
	$(PY) -m pytest -m slurm tests/slurm

SLURM_BASE ?= /tmp/osb-slurm
slurm-up: ## start the throw-away cluster and keep it (then export SLURM_CONF=$(SLURM_BASE)/etc/slurm.conf)
	SLURM_BASE=$(SLURM_BASE) bash tests/slurm/up.sh

slurm-down: ## stop the cluster slurm-up started
	SLURM_BASE=$(SLURM_BASE) bash tests/slurm/down.sh --purge

test-fast: install ## tests without the slow and simulator ones
	$(PY) -m pytest -m "not slow and not simulator and not slurm"

lint: install ## ruff check and ruff format --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install ## ruff format, then ruff check --fix
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

sweep: install ## run the $(PROFILE) sweep locally and wait (skips finished runs)
	$(PY) -m benchmark sweep --profile $(PROFILE) --executor local --wait

status: install ## count $(PROFILE)'s runs from files: done, running, queued, failed, corrupt, missing
	$(PY) -m benchmark status --profile $(PROFILE)

table: install ## run (or reuse) the runs $(PROFILE)'s table shows, then write reports/$(PROFILE)/table.*
	$(PY) -m benchmark sweep --profile $(PROFILE) --executor local --wait --table-only
	$(PY) -m benchmark table --profile $(PROFILE)

figure-cost-limits: install ## run (or reuse) $(PROFILE)'s runs on $(TASK), then draw reward/cost per cost limit
	$(PY) -m benchmark sweep --profile $(PROFILE) --executor local --wait --task $(TASK)
	$(PY) -m benchmark figure-cost-limits --profile $(PROFILE) --task $(TASK)

curves: install ## learning curves from $(PROFILE)'s training logs -> reports/$(PROFILE)/curves/ [TASK=...]
	$(PY) -m benchmark curves --profile $(PROFILE) $(if $(filter command line,$(origin TASK)),--task $(TASK))

sim-smoke: install ## every algorithm x the 11 simulators: a few steps on random data, one episode
	@dir=$$(mktemp -d -t sim-smoke.XXXXXX) && echo "sim-smoke results: $$dir" && \
	  $(PY) -m benchmark sweep --profile sim-smoke --executor local --wait --results $$dir

figure-budget: install ## sweep the `budget` profile (scales 1, 4, 16 of `sim`; resumable), then draw reports/budget/budget.*
	$(PY) -m benchmark sweep --profile budget --executor local --wait
	$(PY) -m benchmark figure-budget --profile budget

diff: install ## our cells vs the published table -> reports/$(PROFILE)/diff.{md,csv}
	$(PY) -m benchmark diff --profile $(PROFILE)

bench: install ## speed benchmarks -> reports/bench/
	$(PY) -m benchmark bench

data: install ## collect a DSRL-format dataset for $(TASK) [STEPS=N] [SEED=S] (resumable)
	$(PY) -m benchmark data collect $(TASK) $(if $(STEPS),--steps $(STEPS)) $(if $(SEED),--seed $(SEED))

data-all: install ## collect all 11 tasks, two at a time (resumable)
	$(PY) -m benchmark.data.collect_all --jobs 2

# Only the demo's and smoke's own output that git does not track: a committed record or report
# (results/runs/sim/, reports/demo/table.md, ...) is never removed, nor another profile's runs.
CLEANABLE := results/runs/demo results/work/demo results/runs/smoke results/work/smoke \
             reports/demo reports/smoke
clean: ## remove the demo/smoke output git does not track (never a tracked file); says what
	@files=$$(git ls-files --others -- $(CLEANABLE) 2>/dev/null) || \
	  { echo "clean: not a git checkout; nothing removed (it tells tracked from generated files)"; exit 1; }; \
	if [ -z "$$files" ]; then echo "clean: nothing to remove (tracked files are never removed)"; exit 0; fi; \
	printf '%s\n' "$$files" | xargs -d '\n' rm -f --; \
	find $(CLEANABLE) -type d -empty -delete 2>/dev/null || true; \
	echo "clean: removed $$(printf '%s\n' "$$files" | wc -l) untracked file(s):"; \
	printf '%s\n' "$$files" | sed 's/^/  /' | head -20; \
	n=$$(printf '%s\n' "$$files" | wc -l); [ $$n -le 20 ] || echo "  ... and $$((n - 20)) more"
