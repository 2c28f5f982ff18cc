# Obeya — the two commands: `make run` (install, load the demo organisation, serve) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test install lint typecheck pytest bench clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Obeya needs Python >= 3.11; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## run: install, load the demo organisation into the embedded store, derive its links, serve on :8000
run: install
	$(BIN)/obeya demo --replace
	$(BIN)/obeya link
	$(BIN)/obeya serve

## test: lint, type-check and run the whole test suite (PostgreSQL tests need OBEYA_TEST_POSTGRES_URL)
test: install lint typecheck pytest

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest -q --durations=15

## bench: run every benchmark in bench/ and print its figures (densify.py, replay_events.py and
## webhook_deliveries.py are parts of engine.py, replay.py and webhooks.py; figures.py a before/after
## check of the engine's figures: not benchmarks)
BENCH_PARTS := bench/densify.py bench/replay_events.py bench/webhook_deliveries.py bench/figures.py
BENCHMARKS := $(filter-out $(BENCH_PARTS),$(wildcard bench/*.py))
bench: install
	@for b in $(BENCHMARKS); do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache src/*.egg-info
