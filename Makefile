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
CHAOS_ARGS  ?=
FUZZ_ARGS   ?=

.PHONY: run test bench chaos fuzz lint install chromium

run: $(STAMP)
	$(BIN)/python -m questline serve --demo $(SERVE_ARGS)

test: $(STAMP) chromium
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The widget's browser test drives Debian's chromium (never skipped): install it when missing.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
chromium:
	@test -x /usr/bin/chromium || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y chromium; }

bench: $(STAMP)
	$(BIN)/python -m questline bench $(BENCH_ARGS)

# Fault and overload scenarios against live servers; the table also goes to docs/chaos.md.
chaos: $(STAMP)
	$(BIN)/python -m questline chaos --markdown docs/chaos.md $(CHAOS_ARGS)

# The OpenAPI fuzzing of tests/http/test_fuzz.py with many more examples per operation.
fuzz: $(STAMP)
	QUESTLINE_FUZZ_EXAMPLES=$${QUESTLINE_FUZZ_EXAMPLES:-200} $(BIN)/python -m pytest -q tests/http/test_fuzz.py $(FUZZ_ARGS)

# Only the directories that exist (git does not keep empty ones).
lint: $(STAMP)
	$(BIN)/python -m ruff check $(wildcard questline tests benchmarks)

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(PIP) install -q -e '.[test]'
	touch $(STAMP)
