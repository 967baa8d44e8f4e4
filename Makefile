# trafficdl: every entry point a user or CI needs. `make test` and `make demo`
# create the virtual environment themselves, so a fresh clone needs nothing else.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo
PYTEST_ARGS ?=
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)

.PHONY: help venv system-deps test lint unit demo bench protos protos-check images e2e-kind clean \
	k8s-binaries cluster-up cluster-down

help:
	@echo "make demo    synth -> extract -> distributed training -> figures (creates .venv)"
	@echo "make test    lint + the whole test suite (creates .venv)"
	@echo "make bench   every benchmark, one table"
	@echo "make protos  regenerate the committed gRPC stubs"

$(STAMP): pyproject.toml trafficdl/capture/_fastwalk.c
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,bench,api]'
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

# k8s-binaries: the pinned control plane for tests/integration/k8s (built once, ~25 min
# cold on 2 cores, then reused from ~/.cache/trafficdl/k8s in well under a second).
test: $(STAMP) system-deps lint k8s-binaries
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	bash scripts/demo.sh $(DEMO_DIR)

# Every benchmark, one table; the results file feeds the README's figures
# (python scripts/readme_figures.py regenerates them; `make test` checks them).
bench: $(STAMP) system-deps
	$(BIN)/python -m bench --out bench/results/latest.json

protos: $(STAMP)
	$(BIN)/python scripts/gen_protos.py

images:
	docker build --build-arg REVISION=$(REVISION) -f Dockerfile.master -t trafficdl-master:dev .
	docker build --build-arg REVISION=$(REVISION) -f Dockerfile.worker -t trafficdl-worker:dev .
	docker build --build-arg REVISION=$(REVISION) -f Dockerfile.operator -t trafficdl-operator:dev .

e2e-kind: $(STAMP)
	bash scripts/e2e-kind.sh

# A local control plane (etcd, kube-apiserver, kube-controller-manager from pinned Go
# modules, built once into ~/.cache/trafficdl/k8s) + a process kubelet, with the chart
# installed; KUBECONFIG=.cluster/kubeconfig. See docs/deploy.md.
k8s-binaries:
	bash scripts/k8s/build.sh

cluster-up: $(STAMP) k8s-binaries
	$(BIN)/python scripts/k8s/cluster.py up

cluster-down:
	$(BIN)/python scripts/k8s/cluster.py down

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .ruff_cache build dist *.egg-info
