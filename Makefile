# Two commands on a fresh Debian machine: `make run` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8501
API_PORT ?= 8080
GRPC_PORT ?= 50051
# the UI's own /metrics (phoenix_ui_*); the API serves its metrics on API_PORT
UI_METRICS_PORT ?= 9465
SMOKE_DIR := .smoke
# Debian packages the test suite talks to for real (PostgreSQL: tests/conftest.py starts a
# throwaway server with its initdb/pg_ctl when none answers on 127.0.0.1:5432).
TEST_DEB_PACKAGES := postgresql prometheus chromium git redis-server
PYTEST_ARGS ?=
FUZZ_EXAMPLES ?= 20000

.PHONY: run test smoke collector kube-tools setup setup-dev deb-packages lint unit fuzz bench clean grpc dashboards manifests

# The gRPC stubs are generated from the .proto files, never committed (core/api/grpc_build.py).
PROTOS := $(shell find proto -name '*.proto')
GRPC_STUBS := core/api/grpc_gen/__init__.py

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime-installed: $(BIN)/python requirements.txt pyproject.toml
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/python core/api/grpc_build.py
	touch $@

# Regenerated whenever a .proto or the generator changes (the generator writes this file last;
# a fresh install generates them already, in the rule above).
$(GRPC_STUBS): $(PROTOS) core/api/grpc_build.py | $(VENV)/.runtime-installed
	$(BIN)/python core/api/grpc_build.py

grpc: $(GRPC_STUBS)

$(VENV)/.dev-installed: $(VENV)/.runtime-installed requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(VENV)/.runtime-installed $(GRPC_STUBS)

setup-dev: $(VENV)/.dev-installed $(GRPC_STUBS) deb-packages

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
	$(BIN)/phoenix user init
	@# The API (REST and gRPC) runs in the background beside the UI, with the one scheduler: it starts
	@# at once (the UI's would wait for a first browser session), and two schedulers on one host would
	@# race for the standing collector. A background job of a non-interactive shell ignores Ctrl-C,
	@# so the trap stops it (SIGTERM, then waits) whenever the UI ends.
	$(BIN)/phoenix api --host $(HOST) --port $(API_PORT) --grpc-port $(GRPC_PORT) --embedded-scheduler & api=$$!; \
	trap 'kill $$api 2>/dev/null; wait $$api 2>/dev/null' EXIT; trap 'exit 130' INT TERM; \
	PHOENIX_EMBEDDED_SCHEDULER=0 PHOENIX_METRICS_PORT=$(UI_METRICS_PORT) $(BIN)/phoenix ui --host $(HOST) --port $(PORT)

lint: setup-dev
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# The pinned Phoenix collector distribution (collector/builder-config.yaml), built once into a
# cache outside the work tree keyed by the manifest; needs Go and the Go module proxy.
collector: setup
	$(BIN)/phoenix otelcol build

# The suite's real Kubernetes API server (tests/kube.py): etcd and kube-apiserver pinned under
# tools/go/, each built once by scripts/gotool.sh into ~/.cache/phoenix/gotools keyed by its
# go.mod/go.sum/main.go (kube-apiserver: about 10 min the first time on 2 cores). Prometheus too:
# Debian's has no kubernetes_sd_configs, which tests/integration/test_k8s_prometheus.py needs.
kube-tools:
	scripts/gotool.sh etcd >/dev/null
	scripts/gotool.sh kube-apiserver >/dev/null
	scripts/gotool.sh prometheus >/dev/null

# The runtime-only install (as in the Docker image) through the main journeys, the browser
# part included. See scripts/smoke.sh.
smoke: setup-dev
	PYTHON=$(PYTHON) scripts/smoke.sh $(SMOKE_DIR) $(abspath $(BIN)/python)

# The e2e tests run inside `smoke`, against the installed app.
test: lint collector kube-tools smoke
	$(BIN)/python -m pytest --ignore=tests/e2e --durations=25 $(PYTEST_ARGS)

unit: setup-dev
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

fuzz: setup-dev
	PHOENIX_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest tests/fuzz -q $(PYTEST_ARGS)

bench: setup
	$(BIN)/phoenix bench --json

# Regenerate the Grafana dashboards and their provisioning (dashboards/build.py); commit the result.
dashboards: setup-dev
	$(BIN)/python dashboards/build.py

# Every kustomize overlay of k8s/ rendered into dist/k8s/<overlay>.yaml and validated (strict
# Kubernetes schemas; custom resources against their CRDs). Kustomize is built from its Go module
# once (tools/go/kustomize). See scripts/manifests.py and docs/kubernetes.md.
manifests: setup
	$(BIN)/python scripts/manifests.py --out dist/k8s

clean:
	rm -rf $(VENV) $(SMOKE_DIR) .pytest_cache .ruff_cache build core/api/grpc_gen dist
