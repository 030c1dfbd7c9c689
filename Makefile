# Two entry points: `make run` (main job on the bundled sample) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Tests run in a shuffled order (pytest-randomly), the same order every run unless TEST_SEED is
# given: `make test TEST_SEED=$$RANDOM` tries another order.
TEST_SEED ?= 20261127

.PHONY: venv run test lint bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: venv
	$(BIN)/cascade-ml run pipelines/near.yaml

test: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/pytest -q -n 2 -p randomly --randomly-seed=$(TEST_SEED)

lint: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports

bench: venv
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache
