#!/usr/bin/env bash
# `make e2e-kind`: the end-to-end suite on a throwaway kind cluster.
# tests/e2e creates the cluster, builds the three images (as `make images`)
# and loads them, installs charts/trafficdl, writes a dataset with a Job,
# trains a TrafficTrainingJob with 3 workers, kills one mid-run, checks the
# status and metrics, deletes the job and checks nothing is left behind.
# Needs docker (with a running engine), kind, kubectl and helm on PATH.
# Knobs: TRAFFICDL_E2E_KEEP=1 keeps the cluster, TRAFFICDL_E2E_REUSE=1 reuses
# one named TRAFFICDL_E2E_CLUSTER, TRAFFICDL_E2E_SKIP_BUILD=1 uses images
# already built; diagnostics land in TRAFFICDL_E2E_ARTIFACTS on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "e2e-kind: missing ${missing[*]} on PATH; install them (see docs/deploy.md)" >&2
  exit 2
fi
if ! docker info >/dev/null 2>&1; then
  echo "e2e-kind: no Docker engine reachable (docker info failed)" >&2
  exit 2
fi

PY="${PYTHON:-.venv/bin/python}"
export TRAFFICDL_E2E=1 TRAFFICDL_E2E_REQUIRED=1
export TRAFFICDL_E2E_ARTIFACTS="${TRAFFICDL_E2E_ARTIFACTS:-${TMPDIR:-/tmp}/trafficdl-e2e-artifacts}"
# -p no:cacheprovider: nothing written next to the sources by a CI run.
exec "$PY" -m pytest -m e2e tests/e2e -v -rs --timeout=3600 -p no:cacheprovider "$@"
