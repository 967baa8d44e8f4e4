"""`--on kubernetes`: one TrafficTrainingJob per (cell, fold), figures read from its status.

Pure pieces first (dask-kubernetes style): `build_job` turns a CellTask into
the custom resource as a plain dict, `result_from_status` turns a finished
job's .status into a CellResult; both are unit-tested without a cluster. The
KubeRunner only creates, polls and reads, through any object with the two
CustomObjectsApi methods it uses, so tests hand it a fake.

Names are deterministic ({prefix}-{cell}-f{fold}, shortened with a hash to
stay a valid pod-name prefix), and a 409 on create means the job exists: a
resumed sweep re-attaches to a job that kept running while it was away
instead of training the cell twice.

The status carries T, WTPE, cost and the scalar figures, not the confusion
matrix nor the split sizes; with `local_mount` (where this machine sees the
jobs' data volume) the job's run.json is read too, for both. The centralized
baseline (N = 0) is not a TrafficTrainingJob (the CRD needs N >= 1): the sweep
runs it locally and its record says runner "local".
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from trafficdl.contract import (
    API_VERSION,
    DIST_FIELDS,
    GROUP,
    KIND,
    PLURAL,
    TRAIN_FIELDS,
    VERSION,
    crd_keys,
)
from trafficdl.errors import TrafficdlError
from trafficdl.study.sweep import CellResult, CellTask

LABEL_SWEEP, LABEL_CELL = "trafficdl.io/sweep", "trafficdl.io/cell"
MAX_NAME = 50  # pods are named {job}-worker-{i}: leave room under the 63-character limit

# Config field -> CRD key: the operator's table read the other way; the fold is set
# per task (build_job), not from the config.
_TRAIN = {py: k8s for py, k8s in crd_keys(TRAIN_FIELDS).items() if py not in ("folds", "fold")}
_DIST = crd_keys(DIST_FIELDS)


class KubeRunError(TrafficdlError):
    """A TrafficTrainingJob failed, timed out or could not be created."""


class CustomObjects(Protocol):
    """The part of kubernetes.client.CustomObjectsApi the runner uses."""

    def create_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, body: dict[str, Any]
    ) -> Any: ...

    def get_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str
    ) -> Any: ...


@dataclass(frozen=True)
class KubeSettings:
    """Where the jobs run and where they find the dataset (paths inside the volume)."""

    volume: dict[str, Any]  # a pod volume source, e.g. {"persistentVolumeClaim": {...}}
    dataset_path: str  # relative to mount_path
    namespace: str = "default"
    mount_path: str = "/data"
    output_path: str = "runs"
    prefix: str = "sweep"
    local_mount: Path | None = None  # this machine's view of the volume (optional)
    poll_seconds: float = 5.0
    timeout_seconds: float = 24 * 3600.0
    extra_spec: dict[str, Any] = field(default_factory=dict)  # master/worker/runPolicy


def job_name(prefix: str, cell_id: str, fold: int) -> str:
    """A DNS-1123 name, unique per (prefix, cell, fold), at most MAX_NAME characters."""
    raw = re.sub(r"[^a-z0-9-]+", "-", f"{prefix}-{cell_id}-f{fold}".lower()).strip("-")
    if len(raw) <= MAX_NAME:
        return raw
    digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
    return f"{raw[: MAX_NAME - 9].rstrip('-')}-{digest}"


def build_job(task: CellTask, s: KubeSettings) -> dict[str, Any]:
    """The TrafficTrainingJob of one (cell, fold)."""
    if task.cell.centralized:
        raise KubeRunError("the centralized cell (N = 0) is not a TrafficTrainingJob")
    train = {k8s: getattr(task.train_cfg, py) for py, k8s in _TRAIN.items()}
    if task.folds > 1:  # the CRD's train.folds/fold select the fold's rows
        train.update(folds=task.folds, fold=task.fold)
    d = task.dist_cfg
    name = job_name(s.prefix, task.cell.id, task.fold)
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": s.namespace,
            "labels": {
                LABEL_SWEEP: job_name(s.prefix, "", 0)[:63],
                LABEL_CELL: job_name("", task.cell.id, task.fold),
            },
        },
        "spec": {
            "train": train,
            "distribution": {k8s: getattr(d, py) for py, k8s in _DIST.items()},
            "scale": {"workers": d.workers, "threadsPerWorker": d.threads_per_worker},
            "pricing": {
                "workerHourlyPrice": d.worker_price,
                "masterHourlyPrice": d.master_price,
                "currency": d.currency,
            },
            "data": {
                "volume": s.volume,
                "mountPath": s.mount_path,
                "datasetPath": s.dataset_path,
                "outputPath": s.output_path,
            },
            **s.extra_spec,
        },
    }


def result_from_status(
    status: dict[str, Any], task: CellTask, run_json: dict[str, Any] | None = None
) -> CellResult:
    """A finished job's figures; run.json (when readable) adds confusion and split check."""
    fig = status.get("figures") or {}
    missing = [k for k in ("trainingSeconds", "wtpeSeconds") if k not in status]
    missing += [f"figures.{k}" for k in ("accuracy", "macroRecall", "macroF1") if k not in fig]
    if missing:
        raise KubeRunError(f"job status lacks {', '.join(missing)}")
    if run_json is not None:
        split = run_json.get("split", {})
        if (split.get("train"), split.get("test")) != (len(task.train_idx), len(task.test_idx)):
            raise KubeRunError(
                f"the job trained on {split.get('train')}/{split.get('test')} "
                f"rows, the fold has {len(task.train_idx)}/{len(task.test_idx)}"
            )
    return CellResult(
        t_s=float(status["trainingSeconds"]),
        wtpe_s=float(status["wtpeSeconds"]),
        epochs=int(status.get("epochs") or task.train_cfg.epochs),
        accuracy=float(fig["accuracy"]),
        macro_recall=float(fig["macroRecall"]),
        macro_f=float(fig["macroF1"]),
        confusion=(run_json or {}).get("confusion", []),
        labels=(run_json or {}).get("labels", []),
        threads=task.dist_cfg.threads_per_worker,
        device=task.train_cfg.device,
        extra={"job": status.get("runId", ""), "restarts": status.get("masterRestarts", 0)},
    )


class KubeRunner:
    """Create (or re-attach to) the job of each (cell, fold) and wait for its end."""

    def __init__(
        self,
        api: CustomObjects,
        settings: KubeSettings,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api, self.s, self.sleep, self.clock = api, settings, sleep, clock

    def __call__(self, task: CellTask) -> CellResult:
        body = build_job(task, self.s)
        name = body["metadata"]["name"]
        try:
            self.api.create_namespaced_custom_object(GROUP, VERSION, self.s.namespace, PLURAL, body)
        except Exception as exc:
            if getattr(exc, "status", None) != 409:  # 409: it exists, re-attach
                raise KubeRunError(f"cannot create {KIND} {name}: {exc}") from exc
        status = self._wait(name)
        return result_from_status(status, task, self._run_json(name))

    def _wait(self, name: str) -> dict[str, Any]:
        deadline = self.clock() + self.s.timeout_seconds
        while True:
            obj = self.api.get_namespaced_custom_object(
                GROUP, VERSION, self.s.namespace, PLURAL, name
            )
            status = dict((obj or {}).get("status") or {})
            phase = status.get("phase")
            if phase == "Succeeded":
                return status
            if phase == "Failed":
                why = next(
                    (
                        c.get("message") or c.get("reason", "")
                        for c in status.get("conditions", [])
                        if c.get("type") == "Failed"
                    ),
                    "",
                )
                raise KubeRunError(f"{KIND} {name} failed: {why or 'no reason given'}")
            if self.clock() > deadline:
                raise KubeRunError(
                    f"{KIND} {name} still {phase or 'pending'} after {self.s.timeout_seconds:.0f} s"
                )
            self.sleep(self.s.poll_seconds)

    def _run_json(self, name: str) -> dict[str, Any] | None:
        if self.s.local_mount is None:
            return None
        path = self.s.local_mount / self.s.output_path / name / "run.json"
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None


def make_api() -> CustomObjects:  # pragma: no cover - needs a cluster
    """A CustomObjectsApi from the kube config (or the in-cluster service account)."""
    try:
        from kubernetes import client, config
    except ImportError as exc:
        raise KubeRunError(
            "--on kubernetes needs the kubernetes package: pip install 'trafficdl[operator]'"
        ) from exc
    try:
        config.load_kube_config()
    except Exception:
        try:
            config.load_incluster_config()
        except Exception as exc:
            raise KubeRunError(f"no Kubernetes configuration found ({exc})") from exc
    return client.CustomObjectsApi()
