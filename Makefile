# trafficdl: every entry point a user or CI needs. `make test` and `make demo`
# create the virtual environment themselves, so a fresh clone needs nothing else.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo
PYTEST_ARGS ?=
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)

.PHONY: help venv system-deps test lint unit demo bench protos protos-check images e2e-kind clean

help:
	@echo "make demo    synth -> extract -> distributed training -> figures (creates .venv)"
	@echo "make test    lint + the whole test suite (creates .venv)"
	@echo "make bench   every benchmark, one table"
	@echo "make protos  regenerate the committed gRPC stubs"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $(STAMP)

venv: $(STAMP)

# Debian packages the integration tests and benchmarks drive for real
# (Prometheus server, tshark). Installed only when missing and when we are root.
system-deps:
	@bash scripts/system-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python scripts/gen_protos.py --check

test: $(STAMP) system-deps lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	bash scripts/demo.sh $(DEMO_DIR)

bench: $(STAMP) system-deps
	$(BIN)/python -m bench

protos: $(STAMP)
	$(BIN)/python scripts/gen_protos.py

images:
	docker build --build-arg REVISION=$(REVISION) -f Dockerfile.master -t trafficdl-master:dev .
	docker build --build-arg REVISION=$(REVISION) -f Dockerfile.worker -t trafficdl-worker:dev .
	docker build --build-arg REVISION=$(REVISION) -f Dockerfile.operator -t trafficdl-operator:dev .

e2e-kind: $(STAMP)
	bash scripts/e2e-kind.sh

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .ruff_cache build dist *.egg-info
