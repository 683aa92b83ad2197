# One entry point for people and CI. `make test` installs everything it needs and runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install binaries lint test test-fast dev-up demo bench-rotate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'

binaries:
	@start=$$(date +%s); bash hack/build-binaries.sh >/dev/null; \
	echo "control plane build: $$(( $$(date +%s) - start )) s"

lint: install
	$(BIN)/ruff check operator tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: install binaries lint
	$(BIN)/pytest

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

# `botsecret rotate --now` -> pod-template patch: medians, printed (see bench/README.md).
bench-rotate: install binaries
	$(BIN)/python -m bench.rotate_now

.PHONY: bench-node
# The node's set-up time (cold and warm), its memory and the kubelet's warm build; as root.
bench-node: install binaries
	$(BIN)/python -m bench.node_setup --build
