# Two commands from a fresh checkout: `make run` and `make test`.
# Each creates .venv and installs the project into it when missing or when
# pyproject.toml changed since the last install (stamp: .venv/.installed).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIP    := $(BIN)/python -m pip --disable-pip-version-check

SERVE_ARGS  ?=
PYTEST_ARGS ?=
BENCH_ARGS  ?=

.PHONY: run test bench lint install

run: $(STAMP)
	$(BIN)/python -m questline serve --demo $(SERVE_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m questline bench $(BENCH_ARGS)

# Only the directories that exist (git does not keep empty ones).
lint: $(STAMP)
	$(BIN)/python -m ruff check $(wildcard questline tests benchmarks)

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(PIP) install -q -e '.[test]'
	touch $(STAMP)
