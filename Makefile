# The two commands of the README:
#   make demo   start the demo hub on http://127.0.0.1:8000
#   make test   run the test suite (lint, unit, end-to-end, docs build)
# Each installs what it needs first: a virtualenv in .venv, npm packages in
# node_modules, and the Debian packages the tests use (see ci/system-packages.sh).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.hubext-installed
# `make test-lowest`: the suite on the lowest versions pyproject.toml claims
# (ci/lowest-constraints.txt), in a second virtualenv.
LOWEST_VENV ?= .venv-lowest
LOWEST_BIN := $(LOWEST_VENV)/bin
LOWEST_STAMP := $(LOWEST_VENV)/.hubext-installed
# Tests marked own_environment run in a Python environment of their own (a
# fresh virtualenv from PyPI, make demo's .venv): the same versions as in
# `make test`, so this leg leaves them out.
LOWEST_PYTEST_ARGS ?= -m "not own_environment"
# The suite runs in parallel: test files spread over workers, one file's
# tests on one worker (module-scoped hubs start once); each worker takes
# ports from a range of its own (tests/conftest.py). Most of a test's time
# is spent waiting for real processes, so more workers than cores help.
PYTEST_WORKERS ?= 4
PARALLEL := -n $(PYTEST_WORKERS) --dist loadfile

.PHONY: install demo test test-console-full test-lowest lint format docs system-packages clean

install: $(STAMP) node_modules/.package-lock.json

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,docs,demo]'
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

system-packages:
	bash ci/system-packages.sh

# make demo DEMO_ARGS="--free-ports --state-dir /tmp/demo": see demo/run.py.
demo: install
	$(BIN)/python demo/run.py $(DEMO_ARGS)

test: install system-packages
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest $(PARALLEL) $(PYTEST_ARGS)

# The console's property test at the issue's full count (10,000 sequences;
# the suite runs 2,000): 13 minutes on 2 shared cores.
test-console-full: install
	HUBEXT_CONSOLE_SEQUENCES=10000 $(BIN)/python -m pytest -p no:randomly -s tests/test_console_property.py

$(LOWEST_STAMP): pyproject.toml ci/lowest-constraints.txt ci/lowest_constraints.py
	$(PYTHON) ci/lowest_constraints.py --check
	test -x $(LOWEST_BIN)/python || $(PYTHON) -m venv $(LOWEST_VENV)
	$(LOWEST_BIN)/python -m pip install --quiet --upgrade pip
	$(LOWEST_BIN)/python -m pip install --quiet -e '.[test,docs]' -c ci/lowest-constraints.txt
	touch $@

# The console's property test runs 300 sequences on the lowest versions (the
# first leg runs 2,000): the same handlers under JupyterHub's lowest scopes
# code, at a seventh of its CPU.
LOWEST_CONSOLE_SEQUENCES ?= 300

test-lowest: $(LOWEST_STAMP) node_modules/.package-lock.json system-packages
	$(LOWEST_BIN)/python ci/lowest_constraints.py --installed
	HUBEXT_CONSOLE_SEQUENCES=$(LOWEST_CONSOLE_SEQUENCES) $(LOWEST_BIN)/python -m pytest $(PARALLEL) $(LOWEST_PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

docs: install
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html

clean:
	rm -rf docs/_build .hubext-demo .pytest_cache
