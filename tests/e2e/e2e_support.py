"""Test support for the kind end-to-end suite: tool checks, a kubectl wrapper, polling.

Everything goes through the real CLIs (docker, kind, kubectl, helm) a platform
team would use, so a pass means `make images`, `helm install` and
`kubectl apply` work as documented in docs/deploy.md. When a tool or the
Docker engine is missing, `skip_reason` says which, and the suite skips.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]
TOOLS = ("docker", "kind", "kubectl", "helm")
CLUSTER = os.environ.get("TRAFFICDL_E2E_CLUSTER", "trafficdl-e2e")
SYSTEM_NS = "trafficdl-system"  # the chart's release namespace (restricted Pod Security)
JOBS_NS = "trafficdl-e2e"  # where jobs run: a namespaced Role, not the release namespace
PVC = "trafficdl-data"
# The tags `make images` builds and charts/trafficdl/ci/kind-e2e-values.yaml names.
IMAGES = {name: f"trafficdl-{name}:dev" for name in ("master", "worker", "operator")}
DATASET_APPS = 4
T = TypeVar("T")


def skip_reason(markexpr: str) -> str | None:
    """Why the suite cannot run here, or None when it can and was asked to."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return (f"kind e2e needs {', '.join(missing)} on PATH (not installed here); "
                "it runs where Docker and kind exist: `make e2e-kind`")
    info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                          capture_output=True, text=True, timeout=30, check=False)
    if info.returncode != 0:
        return f"no Docker engine reachable (`docker info`: {info.stderr.strip()[:200]})"
    opted_in = os.environ.get("TRAFFICDL_E2E") == "1" or (
        "e2e" in markexpr and "not e2e" not in markexpr)
    if not opted_in:
        return ("kind e2e is opt-in (it creates a cluster and builds images, ~10-20 min): "
                "run `make e2e-kind`, `pytest -m e2e tests/e2e` or set TRAFFICDL_E2E=1")
    return None


def run(*args: str, timeout: float = 600, input_text: str | None = None,
        check: bool = True, env: dict[str, str] | None = None) -> str:
    """Run a command from the repository root; on failure raise with its output."""
    proc = subprocess.run(list(args), cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, input=input_text, check=False,
                          env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} -> {proc.returncode}\n{proc.stdout[-4000:]}\n"
                           f"{proc.stderr[-4000:]}")
    return proc.stdout


def wait_for(probe: Callable[[], T | None], timeout: float, what: str,
             interval: float = 2.0) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
        except (RuntimeError, ValueError, KeyError) as exc:  # transient API answers
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}"
                       + (f" (last error: {last_error})" if last_error else ""))


class Kubectl:
    """kubectl against one cluster (its own kubeconfig), JSON in and out."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig

    def __call__(self, *args: str, timeout: float = 120, input_text: str | None = None,
                 check: bool = True) -> str:
        return run("kubectl", "--kubeconfig", str(self.kubeconfig), *args, timeout=timeout,
                   input_text=input_text, check=check)

    def apply(self, manifest: dict[str, Any] | list[dict[str, Any]]) -> None:
        docs = manifest if isinstance(manifest, list) else [manifest]
        self("apply", "-f", "-", input_text="\n".join(json.dumps(d) for d in docs))

    def get(self, kind: str, name: str | None = None, namespace: str | None = None,
            selector: str | None = None) -> dict[str, Any]:
        args = ["get", kind] + ([name] if name else []) + ["-o", "json"]
        if namespace:
            args += ["-n", namespace]
        if selector:
            args += ["-l", selector]
        return json.loads(self(*args))

    def exists(self, kind: str, name: str, namespace: str) -> bool:
        out = self("get", kind, name, "-n", namespace, "--ignore-not-found", "-o", "name")
        return bool(out.strip())

    def scrape(self, namespace: str, pod: str, port: int) -> dict[str, float]:
        """A pod's /metrics through the API server proxy: {series{labels}: value}."""
        text = self("get", "--raw",
                    f"/api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy/metrics")
        return parse_metrics(text)

    def scrape_service(self, namespace: str, service: str, port: int) -> dict[str, float]:
        text = self("get", "--raw",
                    f"/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy/metrics")
        return parse_metrics(text)


def dataset_manifests() -> list[dict[str, Any]]:
    """A PVC and the Job that fills it: `trafficdl synth` then `trafficdl extract`."""
    data = [{"name": "data", "mountPath": "/data"}]
    return [
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
         "metadata": {"name": PVC, "namespace": JOBS_NS},
         "spec": {"accessModes": ["ReadWriteOnce"],
                  "resources": {"requests": {"storage": "1Gi"}}}},
        {"apiVersion": "batch/v1", "kind": "Job",
         "metadata": {"name": "dataset", "namespace": JOBS_NS},
         "spec": {"backoffLimit": 1, "template": {"spec": {
             "restartPolicy": "Never",
             "securityContext": {"fsGroup": 10001},
             "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": PVC}}],
             "initContainers": [{
                 "name": "synth", "image": IMAGES["worker"], "command": ["trafficdl"],
                 "args": ["synth", "/data/captures", "--apps", str(DATASET_APPS),
                          "--flows-per-app", "250", "--seed", "7"],
                 "volumeMounts": data}],
             "containers": [{
                 "name": "extract", "image": IMAGES["worker"], "command": ["trafficdl"],
                 "args": ["extract", "/data/captures", "--out", "/data/dataset",
                          "--jobs", "1", "--no-progress"],
                 "volumeMounts": data}],
         }}}},
    ]


JOB = "e2e-cnn"
WORKERS = 3
EPOCHS = 30  # long enough on a CI runner to kill a worker while it trains
WORKER_PRICE, MASTER_PRICE = 0.5, 0.698
JOB_LABEL = f"trafficdl.io/job-name={JOB}"


def job_manifest() -> dict[str, Any]:
    """The TrafficTrainingJob of the e2e run: 3 cnn1d workers on the PVC's dataset."""
    return {
        "apiVersion": "trafficdl.io/v1alpha1", "kind": "TrafficTrainingJob",
        "metadata": {"name": JOB, "namespace": JOBS_NS},
        "spec": {
            "train": {"model": "cnn1d", "epochs": EPOCHS, "batchSize": 50, "seed": 1},
            "distribution": {"algorithm": "aeasgd", "windowEpochs": 0.5},
            "data": {"volume": {"persistentVolumeClaim": {"claimName": PVC}},
                     "mountPath": "/data", "datasetPath": "dataset", "outputPath": "runs"},
            "scale": {"workers": WORKERS, "threadsPerWorker": 1},
            "pricing": {"workerHourlyPrice": WORKER_PRICE, "masterHourlyPrice": MASTER_PRICE,
                        "currency": "EUR"},
            # Keep the pods after success: deleting the job must be what removes them.
            "runPolicy": {"backoffLimit": 3, "cleanPodPolicy": "None"},
        },
    }


def parse_metrics(text: str) -> dict[str, float]:
    """Flatten Prometheus text into {name: value}, label sets summed (bounded labels only)."""
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[sample.name] = values.get(sample.name, 0.0) + sample.value
    return values
