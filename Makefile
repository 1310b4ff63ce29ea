# Two commands on a fresh Debian machine: `make run` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501
# Debian packages the test suite talks to for real.
TEST_DEB_PACKAGES := prometheus chromium git
PYTEST_ARGS ?=

.PHONY: run test setup setup-dev deb-packages lint unit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime-installed: $(BIN)/python requirements.txt pyproject.toml
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.dev-installed: $(VENV)/.runtime-installed requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(VENV)/.runtime-installed

setup-dev: $(VENV)/.dev-installed deb-packages

# Install the Debian packages the suite needs, only when one is missing.
deb-packages:
	@missing=""; for p in $(TEST_DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

run: setup
	mkdir -p data
	$(BIN)/phoenix db upgrade
	$(BIN)/streamlit run app/main.py --server.port $(PORT) --server.headless true

lint: setup-dev
	$(BIN)/ruff check .
	$(BIN)/lint-imports

test: setup-dev
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest $(PYTEST_ARGS)

unit: setup-dev
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

bench: setup
	$(BIN)/phoenix bench --json

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
