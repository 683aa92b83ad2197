# One entry point for people and CI. `make test` installs everything it needs and runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install binaries lint test test-fast dev-up demo bench-rotate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Editable: code changes need no reinstall, only pyproject.toml's (the rule is below, with demo's).
install: $(VENV)/.installed

binaries:
	@start=$$(date +%s); bash hack/build-binaries.sh >/dev/null; \
	echo "control plane build: $$(( $$(date +%s) - start )) s"

lint: install
	$(BIN)/ruff check operator tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# Concurrent shards, each with a world of its own (tests/harness/shard_runner.py), and the linters
# beside them (CPU-bound while the tests mostly wait); ends with "N passed, N failed" and fails if
# a shard or the linters failed. SHARDS=N changes their number, PYTEST_ARGS goes to every shard.
SHARDS ?= 2
test: install binaries
	$(BIN)/python -m tests.harness.shard_runner --shards $(SHARDS) --beside '$(MAKE) --no-print-directory lint' $(PYTEST_ARGS)

test-fast: lint
	$(BIN)/pytest -m "not rollout"

# The whole loop on a local world, then everything stopped (KEEP=1: stays up until Ctrl-C).
demo: $(VENV)/.installed
	@$(BIN)/python -m tests.demo $(if $(KEEP),--keep)

# pip install again only when the dependencies changed (pip itself takes seconds to find nothing to do).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@echo "demo: installing the Python environment into $(VENV) (editable; a minute or two the first time)"
	@$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

dev-up: install binaries
	$(BIN)/python -m tests.harness.devup

clean:
	rm -rf $(VENV) test-artifacts .mypy_cache .ruff_cache .pytest_cache

.PHONY: bench
# Rotation latency and ReplicaSet figures; prints, never asserts on time (see bench/README.md).
bench: install binaries
	$(BIN)/python -m bench.rotation

.PHONY: bench-scale
# N BotSecrets on one operator: apply -> Ready, idle requests, force-sync latency, restart
# (bench/scale.py). Writes bench/results/ and prints the figures; never asserts on time.
N ?= 100
bench-scale: install binaries
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m bench.scale --n $(N)

# `botsecret rotate --now` -> pod-template patch: medians, printed (see bench/README.md).
bench-rotate: install binaries
	$(BIN)/python -m bench.rotate_now

.PHONY: bench-events
# An AWS change event on an SQS queue -> the pod-template patch, N BotSecrets (N=100), ROTATIONS one
# at a time (20): p50/p99/max and provider reads per event, printed (see bench/README.md).
ROTATIONS ?= 20
bench-events: install binaries
	$(BIN)/python -m bench.change_event --n $(N) --rotations $(ROTATIONS)

.PHONY: bench-node
# The node's set-up time (cold and warm), its memory and the kubelet's warm build; as root.
bench-node: install binaries
	$(BIN)/python -m bench.node_setup --build
