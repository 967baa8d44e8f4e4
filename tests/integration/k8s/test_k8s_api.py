"""The CRD against the real API server: established, explained, validated, defaulted."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from k8s_support import Kube

from trafficdl.config import CONVERGING

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
NS = "trafficdl"


def _rejects(path: Path) -> str:
    return next(line.split(":", 1)[1].strip() for line in path.read_text().splitlines()
                if line.startswith("# rejects:"))


def test_crd_is_established_and_explained(kube: Kube) -> None:
    crd = kube.json("get", "crd", "traffictrainingjobs.trafficdl.io")
    conds = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conds["Established"] == "True" and conds["NamesAccepted"] == "True"
    out = kube.run("explain", "ttj.spec.scale.workers").stdout
    assert "FIELD: workers <integer>" in out and "scale an asynchronous run" in out
    version = kube.json("version")["serverVersion"]
    assert version["gitVersion"].startswith("v1.36.") and version["minor"] == "36"


@pytest.mark.parametrize("path", sorted((EXAMPLES / "invalid").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_every_invalid_example_is_rejected_by_the_server(kube: Kube, path: Path) -> None:
    res = kube.run("create", "--dry-run=server", "--validate=strict", "-n", NS, "-f", str(path),
                   check=False)
    assert res.returncode != 0, res.stdout
    where = _rejects(path)
    leaf = where.rsplit(".", 1)[-1]
    assert leaf in res.stderr, res.stderr
    if path.name == "unknown-field.yaml":
        assert 'unknown field "spec.scale.replicas"' in res.stderr
    else:
        assert "is invalid" in res.stderr


def test_unknown_fields_are_pruned_without_strict_validation(kube: Kube) -> None:
    path = EXAMPLES / "invalid" / "unknown-field.yaml"
    res = kube.run("create", "--dry-run=server", "--validate=ignore", "-n", NS, "-f", str(path),
                   "-o", "json")
    stored = yaml.safe_load(res.stdout)
    assert "replicas" not in stored["spec"]["scale"]


@pytest.mark.parametrize("path", sorted((EXAMPLES / "invalid-names").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_names_that_cannot_name_children_are_refused_at_admission(kube: Kube,
                                                                 path: Path) -> None:
    res = kube.run("create", "--dry-run=server", "-n", NS, "-f", str(path), check=False)
    assert res.returncode != 0 and "metadata.name must be" in res.stderr, res.stderr


def test_server_side_defaults_land_in_the_stored_object(kube: Kube) -> None:
    job = {"apiVersion": "trafficdl.io/v1alpha1", "kind": "TrafficTrainingJob",
           "metadata": {"name": "defaults", "namespace": NS},
           "spec": {"data": {"volume": {"persistentVolumeClaim": {"claimName": "d"}},
                             "datasetPath": "ds.npz"}}}
    res = kube.run("create", "--dry-run=server", "-f", "-", "-o", "json",
                   input=yaml.safe_dump(job))
    spec = yaml.safe_load(res.stdout)["spec"]
    # A job converges unless told otherwise (trafficdl.config.CONVERGING).
    assert spec["train"]["model"] == "cnn1d" and spec["train"]["epochs"] == CONVERGING["epochs"]
    assert spec["train"]["valFraction"] == CONVERGING["val_fraction"]
    assert spec["train"]["patience"] == CONVERGING["patience"]
    assert spec["scale"]["workers"] == 2
    assert spec["runPolicy"]["backoffLimit"] == 3
    assert spec["runPolicy"]["cleanPodPolicy"] == "Running"
