# Two commands, each doing its own set-up on a fresh machine:
#   make run    runs the bot (reads .env); installs only what running needs
#   make test   lint, type-check and the whole test suite; adds the test and lint tools
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.runtime-installed
DEV := $(VENV)/.dev-installed

.PHONY: run test bench check

$(RUNTIME): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e .
	touch $(RUNTIME)

$(DEV): $(RUNTIME)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(DEV)

run: $(RUNTIME)
	$(BIN)/python app.py $(ARGS)

# Checks the configuration in .env against Genesys, Slack and the database (python app.py check).
check: $(RUNTIME)
	$(BIN)/python app.py check $(ARGS)

test: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Issue 5's benchmark: the real bot in HTTP mode against the loopback fakes (see bench/run.py).
bench: $(DEV)
	$(BIN)/python -m bench.run $(ARGS)
