"""The Kubernetes cell runner against a fake CustomObjectsApi: manifests and status collection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trafficdl.config import DistConfig, TrainConfig
from trafficdl.study.cluster_jobs import (
    MAX_NAME,
    KubeRunError,
    KubeRunner,
    KubeSettings,
    build_job,
    job_name,
    result_from_status,
)
from trafficdl.study.records import Cell
from trafficdl.study.sweep import CellTask

SETTINGS = KubeSettings(
    volume={"persistentVolumeClaim": {"claimName": "data"}},
    dataset_path="ds",
    namespace="ml",
    poll_seconds=0.0,
    timeout_seconds=10.0,
)
STATUS = {
    "phase": "Succeeded",
    "trainingSeconds": 12.5,
    "wtpeSeconds": 2.5,
    "epochs": 5,
    "figures": {"accuracy": 0.9, "macroRecall": 0.85, "macroF1": 0.8, "macroPrecision": 0.8},
    "runId": "abc",
}


def task(n: int = 4, folds: int = 3, fold: int = 1, tmp: Path = Path("/tmp")) -> CellTask:
    return CellTask(
        cell=Cell("lstm", n, "7b", "aeasgd", "robust"),
        fold=fold,
        folds=folds,
        dataset=tmp,
        train_idx=np.arange(80),
        test_idx=np.arange(80, 100),
        train_cfg=TrainConfig(model="lstm", epochs=5, lr=0.002),
        dist_cfg=DistConfig(
            workers=n,
            window=7,
            rho=5.0,
            elastic_lr=0.02,
            worker_price=0.5,
            master_price=1.5,
            currency="USD",
        ),
        work_dir=tmp,
    )


class FakeApi:
    """Records creates; answers gets from a scripted list of statuses."""

    def __init__(self, statuses: list[dict[str, Any]], conflict: bool = False) -> None:
        self.created: list[dict[str, Any]] = []
        self.gets: list[str] = []
        self.statuses = statuses
        self.conflict = conflict

    def create_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, body: dict[str, Any]
    ) -> Any:
        assert (group, version, plural) == ("trafficdl.io", "v1alpha1", "traffictrainingjobs")
        assert namespace == body["metadata"]["namespace"]
        self.created.append(body)
        if self.conflict:
            err = RuntimeError("exists")
            err.status = 409  # type: ignore[attr-defined]
            raise err
        return body

    def get_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str
    ) -> Any:
        self.gets.append(name)
        return {"status": self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]}


def test_manifest_maps_configs_onto_the_crd() -> None:
    job = build_job(task(), SETTINGS)
    assert job["apiVersion"] == "trafficdl.io/v1alpha1" and job["kind"] == "TrafficTrainingJob"
    spec = job["spec"]
    assert spec["train"]["model"] == "lstm" and spec["train"]["lr"] == 0.002
    assert spec["train"]["batchSize"] == 50 and (spec["train"]["folds"], spec["train"]["fold"]) == (
        3,
        1,
    )
    assert spec["distribution"] == {
        "algorithm": "aeasgd",
        "window": 7,
        "windowEpochs": 1.0,
        "rho": 5.0,
        "elasticLr": 0.02,
        "wireDtype": "float32",
        "syncTimeoutSeconds": 60.0,
        "overlap": False,
    }
    assert spec["scale"]["workers"] == 4
    assert spec["pricing"] == {
        "workerHourlyPrice": 0.5,
        "masterHourlyPrice": 1.5,
        "currency": "USD",
    }
    assert spec["data"]["datasetPath"] == "ds" and spec["data"]["volume"] == SETTINGS.volume
    assert job["metadata"]["namespace"] == "ml"
    # the CRD file of the chart accepts every field we set (structural schema check)
    crd = Path(__file__).parents[3] / "charts/trafficdl/crds/traffictrainingjobs.trafficdl.io.yaml"
    assert crd.is_file(), f"the chart's CRD is missing: {crd}"  # never a silent skip
    import yaml

    props = yaml.safe_load(crd.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"][
        "properties"
    ]["spec"]["properties"]
    for section in ("distribution", "scale", "pricing", "data"):
        assert set(spec[section]) <= set(props[section]["properties"]), section
    unknown = set(spec["train"]) - set(props["train"]["properties"])
    assert unknown <= {"folds", "fold"}  # the fold fields the study asks the CRD for


def test_names_are_valid_unique_and_short() -> None:
    a = job_name("sweep", "cnn1d-n16-w0.05e-aeasgd-robust-with-a-very-long-suffix", 9)
    b = job_name("sweep", "cnn1d-n16-w0.05e-aeasgd-robust-with-a-very-long-suffix", 8)
    assert a != b and len(a) <= MAX_NAME and len(b) <= MAX_NAME
    assert all(c.isalnum() or c == "-" for c in a) and a == a.lower()
    assert job_name("s", "lstm-n2-w1e-aeasgd-paper", 0) == "s-lstm-n2-w1e-aeasgd-paper-f0"


def test_runner_polls_until_succeeded_and_collects_status() -> None:
    api = FakeApi([{"phase": "Created"}, {"phase": "Running"}, STATUS])
    res = KubeRunner(api, SETTINGS, sleep=lambda s: None)(task())
    assert len(api.created) == 1 and len(api.gets) == 3
    assert (res.t_s, res.wtpe_s, res.epochs) == (12.5, 2.5, 5)
    assert (res.accuracy, res.macro_recall, res.macro_f) == (0.9, 0.85, 0.8)
    assert res.confusion == []  # no local view of the volume: no confusion matrix


def test_conflict_reattaches_and_run_json_adds_confusion(tmp_path: Path) -> None:
    s = KubeSettings(
        volume={"emptyDir": {}}, dataset_path="ds", local_mount=tmp_path, poll_seconds=0
    )
    t = task()
    name = build_job(t, s)["metadata"]["name"]
    run_dir = tmp_path / "runs" / name
    run_dir.mkdir(parents=True)
    run_dir.joinpath("run.json").write_text(
        json.dumps(
            {
                "split": {"train": 80, "test": 20},
                "confusion": [[9, 1], [2, 8]],
                "labels": ["a", "b"],
            }
        )
    )
    res = KubeRunner(FakeApi([STATUS], conflict=True), s, sleep=lambda x: None)(t)
    assert res.confusion == [[9, 1], [2, 8]] and res.labels == ["a", "b"]
    run_dir.joinpath("run.json").write_text(json.dumps({"split": {"train": 99, "test": 1}}))
    with pytest.raises(KubeRunError, match="rows"):
        KubeRunner(FakeApi([STATUS]), s, sleep=lambda x: None)(t)


def test_failed_job_and_timeout_and_bad_status_are_errors() -> None:
    failed = {
        "phase": "Failed",
        "conditions": [
            {
                "type": "Failed",
                "status": "True",
                "reason": "BackoffLimitExceeded",
                "message": "worker-2 failed 4 times",
            }
        ],
    }
    with pytest.raises(KubeRunError, match="worker-2 failed 4 times"):
        KubeRunner(FakeApi([failed]), SETTINGS, sleep=lambda s: None)(task())
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += 6.0

    with pytest.raises(KubeRunError, match="still Running"):
        KubeRunner(FakeApi([{"phase": "Running"}]), SETTINGS, sleep=sleep, clock=lambda: now[0])(
            task()
        )
    with pytest.raises(KubeRunError, match=r"figures\.macroF1"):
        result_from_status(
            {"trainingSeconds": 1, "wtpeSeconds": 1, "figures": {"accuracy": 1, "macroRecall": 1}},
            task(),
        )
    with pytest.raises(KubeRunError, match="centralized"):
        build_job(task(n=0), SETTINGS)
