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

.PHONY: synth test lint local deploy diff diff-base diff-fixtures bench bench-staging e2e reliability mutation clean

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

test: $(VENV)/.dev-deps node_modules/.package-lock.json
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

lint: $(VENV)/.dev-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The endpoint on this machine, no AWS account: prints the variables to export, runs until Ctrl-C.
# LOCAL_ARGS="--model-dir DIR" serves a checkpoint instead of a tiny random model.
local: $(VENV)/.dev-deps
	$(BIN)/python -m musicgen_local $(LOCAL_ARGS)

# CI passes DEPLOY_FLAGS="--require-approval never"; locally cdk asks before IAM changes.
deploy: $(VENV)/.synth-deps node_modules/.package-lock.json
	$(CDK) deploy MusicGen-$(ENV) -c env=$(ENV) $(DEPLOY_FLAGS)

# The PR workflow sets DIFF_METHOD=template: its read-only role cannot create change sets.
DIFF_METHOD ?= auto
diff: $(VENV)/.synth-deps node_modules/.package-lock.json
	$(CDK) diff MusicGen-$(ENV) -c env=$(ENV) --method $(DIFF_METHOD)

# The pull-request diff without AWS (diff.yml when no role is configured): synthesize BASE_REF
# and this checkout, then `cdk diff --template` the two; reads no credentials.
BASE_REF ?= origin/main
diff-base: $(VENV)/.synth-deps node_modules/.package-lock.json
	$(BIN)/python .github/scripts/diff_against_base.py $(ENV) --base-ref $(BASE_REF)

# Regenerate tests/unit/delivery/fixtures/app_diffs/ from this app with the real CDK CLI
# (FIXTURES="a b": only those).
diff-fixtures: $(VENV)/.synth-deps node_modules/.package-lock.json
	$(BIN)/python tests/unit/delivery/regenerate_diff_fixtures.py $(FIXTURES)

bench: $(VENV)/.dev-deps
	$(BIN)/python -m bench.generation_benchmark $(BENCH_ARGS)

# Serial vs parallel staging of a generated 1 GiB file from a throttled local Hub (loopback only).
bench-staging: $(VENV)/.dev-deps
	$(BIN)/python -m bench.staging_benchmark $(BENCH_STAGING_ARGS)

e2e: $(VENV)/.dev-deps
	$(BIN)/python -m pytest -q tests/integration/e2e tests/integration/local

# Mutation testing of the modules where a silent mistake is worst (README "Tests"); not part of
# `make test`. One mutant at a time: the CDK tests' jsii process cannot serve two forks at once.
# Results are kept in mutants/, so a second run only tests what changed. The S3 servers start once
# for every mutant's pytest session, and a mutant's run is killed past 3 GiB of memory
# (tests/mutation/run.py). MUTANTS="constructs_lib.model_staging*" narrows a run.
mutation: $(VENV)/.dev-deps
	$(BIN)/python -m tests.mutation.run --max-children 1 $(MUTANTS)
	$(BIN)/python -m tests.mutation.scores

# Hostile inputs, schema properties, load and faults on the local loop (loopback only, bounded):
# every test marked `reliability`, as one table whose last line is JSON.
reliability: $(VENV)/.dev-deps
	$(BIN)/python -m reliability $(RELIABILITY_ARGS)

clean:
	rm -rf cdk.out .pytest_cache
