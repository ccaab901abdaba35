# One entry point for people and CI. `make run` and `make test` work on a fresh clone with
# only Python 3.11+: the first call creates .venv and installs the project with its dev extras.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test golden lint typecheck typecheck-tree proto bench bench-quick bench-engine clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/sector-credit-server

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

golden: install
	$(BIN)/scorecard-test

lint: install
	$(BIN)/ruff check .
	$(BIN)/buf lint protos

# mypy --strict on the sector_credit package (not yet clean, so not yet part of lint or CI)
typecheck: install typecheck-tree
	$(BIN)/mypy

# the installed import root, sector_credit, as symlinks to the top-level folders, for mypy
typecheck-tree:
	rm -rf build/typecheck
	mkdir -p build/typecheck/sector_credit
	ln -s $(foreach f,__init__.py py.typed v1,../../../protos/sector_credit/$(f)) build/typecheck/sector_credit/
	ln -s $(foreach d,server plugins scorecards clients,../../../$(d)) build/typecheck/sector_credit/

proto: install
	$(BIN)/python protos/generate.py

# the service against a bare gRPC server of the same proto, in the same run: unary, batch of 100
# and 1,000, stream, on SQLite and PostgreSQL (docs/benchmarks.md, Service); about 12 minutes.
# bench-quick: one short round, under two minutes
bench: install
	$(BIN)/python bench/service_bench.py $(ARGS)

bench-quick: install
	$(BIN)/python bench/service_bench.py --quick $(ARGS)

# engine evaluations per second vs zen-engine and a hand-written taxi card (docs/benchmarks.md);
# pass ARGS=--quick for a short run
bench-engine: install
	$(BIN)/python bench/engine_bench.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
