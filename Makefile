# dtrun's developer entry points. `make test` and `make demo` work on a fresh machine: they create the
# virtual environment, make sure a Docker daemon answers, and build the local base image if missing.

PYTHON      ?= python3
VENV        ?= .venv
BIN         := $(VENV)/bin
BASE_IMAGE  ?= dtrun-local/base:bookworm
TEST_IMAGE  ?= dtrun-local/busybox:latest
PYTEST_ARGS ?=

export DTRUN_BASE_IMAGE ?= $(BASE_IMAGE)
export DTRUN_TEST_BUSYBOX ?= $(TEST_IMAGE)

.PHONY: help setup venv docker base-image chromium tmux lint test test-unit test-packaging demo bench bench-all clean

help:
	@echo "make demo   run examples/digits end to end (prepare -> train -> evaluate) in containers"
	@echo "make test   set everything up, then ruff, mypy and the whole pytest suite"
	@echo "make test-packaging  the wheel in empty venvs and the README Quick start, run verbatim"
	@echo "make bench  measure dtrun's overhead against raw docker run"
	@echo "make bench-all  every benchmark (overhead, lifecycle, repository scale, snapshot, code volume, imports,"
	@echo "                images, artifacts, remote daemon over ssh:// at 100 Mbit) into benchmarks/RESULTS.md;"
	@echo "                BENCH_BEFORE=REV adds a revision's figures"

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,s3,ssh]'
	touch $@

venv: $(BIN)/.installed

docker:
	@scripts/ensure-docker

base-image: docker
	@images/base/build-base.sh $(BASE_IMAGE)
	@images/base/build-busybox.sh $(TEST_IMAGE)

chromium:
	@scripts/ensure-chromium

tmux:
	@scripts/ensure-tmux

setup: venv base-image tmux

lint: venv
	$(BIN)/ruff check dtrun tests benchmarks examples
	$(BIN)/mypy

test: setup chromium lint  # chromium: the browser tests (tests/browser)
	$(BIN)/pytest -n 2 --dist loadgroup -q $(PYTEST_ARGS)

test-unit: venv
	$(BIN)/pytest -q tests/unit $(PYTEST_ARGS)

# the wheel installed into empty venvs (no extras, then [s3]) and the README's Quick start run verbatim
test-packaging: setup
	$(BIN)/pytest -q tests/packaging $(PYTEST_ARGS)

demo: setup
	cd examples/digits && ../../$(BIN)/dtrun run evaluate --no-cache

bench: setup
	$(BIN)/python benchmarks/overhead.py

# Every benchmark in one session, written to benchmarks/RESULTS.md with the machine's description;
# BENCH_BEFORE=REV also measures that git revision where a benchmark can (repo_scale, snapshot, lifecycle,
# imports); by default the commit before issue 19's work (BENCH_BEFORE= turns it off).
BENCH_BEFORE ?= c73e308
bench-all: setup
	$(BIN)/python benchmarks/report.py $(if $(BENCH_BEFORE),--before $(BENCH_BEFORE))

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
