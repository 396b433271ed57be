# The two commands a newcomer needs: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_SECONDS ?= 60

.PHONY: demo test lint typecheck contracts bench schemas chaos clean

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
	$(BIN)/ruff format --check mm tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy --strict mm

contracts: $(STAMP)
	$(BIN)/lint-imports

## bench: run the benchmarks for real; print median and p99 of each; compare with benchmarks/baseline.json and
## fail on a regression beyond NFR-602's thresholds (a regressed benchmark is re-run BENCH_CONFIRM times first and
## fails only if it regressed every time). docs/ci.md: thresholds, normalisation, refreshing the baseline
BENCH_OPTS    := --benchmark-only -q --benchmark-columns=min,median,max,rounds --benchmark-save-data \
                 --benchmark-warmup=on --benchmark-warmup-iterations=100
BENCH_CONFIRM ?= 2
bench: $(STAMP)
	mkdir -p .benchmarks
	$(BIN)/pytest benchmarks $(BENCH_OPTS) --benchmark-json=.benchmarks/latest.json
	$(BIN)/python benchmarks/report.py .benchmarks/latest.json
	$(BIN)/python benchmarks/compare.py .benchmarks/latest.json --baseline benchmarks/baseline.json \
		--confirm $(BENCH_CONFIRM) --pytest "$(BIN)/pytest $(BENCH_OPTS)"

## bench-baseline: run the benchmarks BASELINE_RUNS times and rewrite benchmarks/baseline.json from them (per
## benchmark, the middle run); commit it with BASELINE_NOTE saying which machine (docs/ci.md, "Refreshing")
BASELINE_RUNS ?= 3
BASELINE_NOTE ?= make bench-baseline on $(shell uname -n), $(shell nproc) CPUs
.PHONY: bench-baseline
bench-baseline: $(STAMP)
	mkdir -p .benchmarks
	for i in $$(seq 1 $(BASELINE_RUNS)); do \
		$(BIN)/pytest benchmarks $(BENCH_OPTS) --benchmark-json=.benchmarks/baseline-run$$i.json || exit 1; \
	done
	$(BIN)/python benchmarks/compare.py $$(for i in $$(seq 1 $(BASELINE_RUNS)); do echo .benchmarks/baseline-run$$i.json; done) \
		--baseline benchmarks/baseline.json --update --note "$(BASELINE_NOTE)"

## chaos: the whole chaos suite (NFR-603; `make test` runs only its quick set): faults injected into a running
## node, a kill -9 soak (MM_CHAOS_KILL9_N kills, default 20); writes .chaos/results.json, then the table of
## docs/resilience.md from it (failures included), and fails if any scenario failed
chaos: $(STAMP)
	$(BIN)/pytest tests/chaos -m chaos -q; status=$$?; \
	$(BIN)/python -m tests.chaos.report .chaos/results.json --write docs/resilience.md && exit $$status

## schemas: regenerate specs/v1alpha1/*.schema.json from the models
schemas: $(STAMP)
	$(BIN)/mmctl schema --output-dir specs/v1alpha1

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .benchmarks .import_linter_cache *.egg-info
