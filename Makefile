# Two entry points: `make run` (main job on the bundled sample) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Tests run in a shuffled order (pytest-randomly), the same order every run unless TEST_SEED is
# given: `make test TEST_SEED=$$RANDOM` tries another order.
TEST_SEED ?= 20261127
# freqtrade in an environment of its own (its pins clash with the project's): the example
# strategy's backtest test (tests/examples/test_freqtrade_backtest.py) runs it.
FREQTRADE_VERSION ?= 2026.9
FT_VENV ?= .venv-freqtrade
FT_STAMP := $(FT_VENV)/.installed-$(FREQTRADE_VERSION)

.PHONY: venv freqtrade-venv run test lint bench clean

venv: $(STAMP)

freqtrade-venv: $(FT_STAMP)

$(FT_STAMP):
	$(PYTHON) -m venv $(FT_VENV)
	$(FT_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(FT_VENV)/bin/python -m pip install --quiet "freqtrade==$(FREQTRADE_VERSION)"
	touch $(FT_STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: venv
	$(BIN)/cascade-ml run pipelines/near.yaml

test: venv freqtrade-venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/pytest -q -n 2 -p randomly --randomly-seed=$(TEST_SEED)

lint: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports

bench: venv
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) $(FT_VENV) .pytest_cache
