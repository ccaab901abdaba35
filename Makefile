# One entry point for people and CI. `make run` and `make test` work on a fresh clone with
# only Python 3.11+: the first call creates .venv and installs the project with its dev extras.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test faults fuzz soak golden lint typecheck typecheck-tree proto bench bench-quick bench-engine clean

$(STAMP): pyproject.toml setup.py
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

# the fault scenarios of issue 16 (tests/faults/, docs/operations.md), the slow ones included:
# PostgreSQL stopped and started, a full tmpfs (as root), the SQLite file removed, a stalled
# writer, idle connections, killed supervisors, a stream client that never reads
faults: install
	SECTOR_CREDIT_FAULTS=all $(BIN)/python -m pytest -q tests/faults $(ARGS)

# every registered scorecard's golden cases; PATHS="file.toml folder/" checks those files instead
golden: install
	$(BIN)/scorecard-test $(PATHS)

# ruff (lint, 100 columns, and the tree as `ruff format` leaves it), buf and mypy --strict
# (as `make typecheck`); all must be clean. Every tool comes from the dev extras (buf: buf-bin)
lint: install typecheck-tree
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/buf lint protos
	$(BIN)/mypy

# mypy --strict on the sector_credit package: the hand-written modules, and the generated
# protobuf/gRPC modules through the .pyi files mypy-protobuf writes (pyproject.toml, tool.mypy)
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
# and 1,000 (FULL and BASIC), stream, on SQLite and PostgreSQL, and on SQLite over mutual TLS
# with an API key, against the bare, the durable and the TLS ceiling (docs/benchmarks.md,
# Service); about 30 minutes on a quiet 2-core machine (the bound configurations are opt-in:
# docs/benchmarks.md, "The measured bound (issue 12)").
# bench-quick: one short round, about four minutes
bench: install
	$(BIN)/python bench/service_bench.py $(ARGS)

bench-quick: install
	$(BIN)/python bench/service_bench.py --quick $(ARGS)

# engine evaluations per second vs zen-engine and a hand-written taxi card (docs/benchmarks.md);
# pass ARGS=--quick for a short run
bench-engine: install
	$(BIN)/python bench/engine_bench.py $(ARGS)

# hypothesis-generated calls over every method (structure-aware and raw bytes) against a real
# server on SQLite and on PostgreSQL side by side: 100,000 requests within 30 minutes; counts by
# method and code; fails on any INTERNAL/UNKNOWN, a server exit or RSS over 600 MB (tests/fuzz/).
# A short run is tests/test_fuzz.py, part of `make test`. E.g. ARGS="--requests 20000 --seed 7"
fuzz: install
	cd tests && ../$(BIN)/python -m fuzz $(ARGS)

# the server under steady load: 5 minutes of Evaluate at half the maximum measured first, RSS
# and SQLite WAL every 10 s, p99 per minute; judged on RSS growth, a flat p99 and a bounded WAL
# (bench/soak.py). E.g. ARGS="--seconds 120 --warmup 30", ARGS="--rate 300"
soak: install
	$(BIN)/python bench/soak.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
