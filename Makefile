# The two commands of the README: `make synth` (every environment's CloudFormation, offline)
# and `make test`. Both create .venv and install what they need on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ENV ?= dev
# Node 20 is end-of-life: jsii prints a banner on every synth unless its major version is listed.
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 20
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
CDK := npx --no-install cdk

.PHONY: synth test lint deploy diff bench e2e reliability clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.synth-deps: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-deps: $(VENV)/.synth-deps requirements-dev.txt requirements-serving.txt pyproject.toml
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -r requirements-serving.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

synth: $(VENV)/.synth-deps node_modules/.package-lock.json
	$(CDK) synth --quiet
	@echo "Templates written to cdk.out/"

test: $(VENV)/.dev-deps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(VENV)/.dev-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# CI passes DEPLOY_FLAGS="--require-approval never"; locally cdk asks before IAM changes.
deploy: $(VENV)/.synth-deps node_modules/.package-lock.json
	$(CDK) deploy MusicGen-$(ENV) -c env=$(ENV) $(DEPLOY_FLAGS)

# The PR workflow sets DIFF_METHOD=template: its read-only role cannot create change sets.
DIFF_METHOD ?= auto
diff: $(VENV)/.synth-deps node_modules/.package-lock.json
	$(CDK) diff MusicGen-$(ENV) -c env=$(ENV) --method $(DIFF_METHOD)

bench: $(VENV)/.dev-deps
	$(BIN)/python -m bench.generation_benchmark $(BENCH_ARGS)

e2e: $(VENV)/.dev-deps
	$(BIN)/python -m pytest -q tests/integration/e2e

# Hostile inputs, schema properties, load and faults on the local loop (loopback only, bounded):
# every test marked `reliability`, as one table whose last line is JSON.
reliability: $(VENV)/.dev-deps
	$(BIN)/python -m reliability $(RELIABILITY_ARGS)

clean:
	rm -rf cdk.out .pytest_cache
