# The README's two commands: `make demo` and `make test`. Both set up everything first:
# a virtualenv with swe-env installed, a Docker engine that answers, and the base image.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test unit lint format typecheck setup engine bench clean

demo: setup
	$(BIN)/swe-env demo

# Lint (rules and formatting) and type-check first: a finding stops the run before any image is built.
test: lint typecheck setup
	$(BIN)/python -m pytest

# The tests that need no Docker engine (pure logic; tests/conftest.py marks `docker` every test that uses the
# engine's fixture and points the SDK at no engine for this run, so one that reaches it unmarked fails).
unit: lint $(VENV)/.installed
	$(BIN)/python -m pytest -m "not docker"

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Rewrites the tree: the safe fixes of pyproject.toml's rules (in practice import order (I), the target Python's
# syntax (UP) and an import UP leaves unused), then the formatter (docs/architecture.md, Conventions). The rules are
# the config's, not a --select here, so that its per-file ignores and target versions hold.
format: $(VENV)/.installed
	$(BIN)/ruff check --fix-only .
	$(BIN)/ruff format .

typecheck: $(VENV)/.installed
	$(BIN)/python -m mypy swe_env

setup: engine
	$(BIN)/swe-env setup

engine: $(VENV)/.installed
	@PYTHON=$(BIN)/python bash scripts/ensure-engine.sh

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,ray,server,trl]'
	@touch $@

bench: setup
	for script in bench/step_latency.py bench/reset_latency.py bench/image_cache.py bench/concurrency.py; do $(BIN)/python $$script || exit 1; done

clean:
	-$(BIN)/swe-env gc
	rm -rf $(VENV) runs
