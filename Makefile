# The two commands a newcomer needs: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_SECONDS ?= 60

.PHONY: demo test lint typecheck contracts bench schemas clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## demo: set up, then run the market maker on the quickstart against the built-in simulator for a minute
## (an hour of simulated market: quoting, fills, the hourly roll-over), print a summary, keep data/quickstart
demo: $(STAMP)
	$(BIN)/mmctl validate -f examples/quickstart/
	$(BIN)/mmctl run -f examples/quickstart/ --state-dir data/quickstart --duration $(DEMO_SECONDS) --api-port 0

## test: set up, then lint, type-check, check layer contracts, and run the tests (benchmarks once, untimed)
test: $(STAMP) lint typecheck contracts
	$(BIN)/pytest tests benchmarks --benchmark-disable -q

lint: $(STAMP)
	$(BIN)/ruff check mm tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy --strict mm

contracts: $(STAMP)
	$(BIN)/lint-imports

## bench: run the benchmarks for real; print median and p99 of each
bench: $(STAMP)
	mkdir -p .benchmarks
	$(BIN)/pytest benchmarks --benchmark-only -q --benchmark-columns=min,median,max,rounds \
		--benchmark-json=.benchmarks/latest.json --benchmark-save-data
	$(BIN)/python benchmarks/report.py .benchmarks/latest.json

## schemas: regenerate specs/v1alpha1/*.schema.json from the models
schemas: $(STAMP)
	$(BIN)/mmctl schema --output-dir specs/v1alpha1

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .benchmarks .import_linter_cache *.egg-info
