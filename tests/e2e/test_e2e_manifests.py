"""What the kind suite sends and how it decides to run, checked here without a cluster.

Not marked e2e: these run in every `make test`. The job manifest must pass the
CRD's schema and the operator's own spec parser, the dataset Job's commands
must really produce a dataset where the job looks for it (run here with the
same arguments), and the skip gate must skip for the right reason.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from e2e_support import (
    DATASET_APPS,
    IMAGES,
    PVC,
    REPO,
    dataset_manifests,
    job_manifest,
    parse_metrics,
    skip_reason,
)
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from trafficdl_operator.job_spec import parse

CRD = yaml.safe_load((REPO / "charts/trafficdl/crds/traffictrainingjobs.trafficdl.io.yaml")
                     .read_text())


def test_job_manifest_passes_the_crd_schema_and_the_operator_parser() -> None:
    manifest = job_manifest()
    version = next(v for v in CRD["spec"]["versions"] if v["storage"])
    assert manifest["apiVersion"] == f"{CRD['spec']['group']}/{version['name']}"
    # OpenAPI v3.0 schemas use draft-4 semantics (boolean exclusiveMinimum).
    jsonschema.Draft4Validator(version["schema"]["openAPIV3Schema"]).validate(manifest)
    job = parse(manifest["spec"])
    assert job.workers >= 2 and job.workers <= 4
    # The job reads the dataset where the dataset Job writes it, on the same claim.
    extract = dataset_manifests()[1]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert job.dataset_file() == extract[extract.index("--out") + 1]
    assert manifest["spec"]["data"]["volume"]["persistentVolumeClaim"]["claimName"] == PVC


def test_dataset_job_commands_write_a_dataset(tmp_path: Path) -> None:
    pod = dataset_manifests()[1]["spec"]["template"]["spec"]
    assert {c["image"] for c in pod["initContainers"] + pod["containers"]} == {IMAGES["worker"]}
    for container in pod["initContainers"] + pod["containers"]:
        assert container["command"] == ["trafficdl"]
        mount = container["volumeMounts"][0]["mountPath"]
        args = [re.sub(f"^{mount}(?=/|$)", str(tmp_path), a) for a in container["args"]]
        proc = subprocess.run([sys.executable, "-m", "trafficdl.cli", *args], cwd=REPO,
                              capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
    meta = json.loads((tmp_path / "dataset" / "dataset.json").read_text())
    assert len(meta["labels"]) == DATASET_APPS
    assert meta["n_objects"] > 0


def _fake_tools(folder: Path, docker_info_rc: int, tools: tuple[str, ...]) -> None:
    folder.mkdir()
    for tool in tools:
        script = folder / tool
        rc = docker_info_rc if tool == "docker" else 0
        script.write_text(f"#!/bin/sh\necho fake {tool} >&2\nexit {rc}\n")
        script.chmod(script.stat().st_mode | stat.S_IEXEC)


@pytest.mark.parametrize(("tools", "docker_rc", "markexpr", "expect"), [
    (("docker", "kubectl"), 0, "e2e", "needs kind, helm"),
    (("docker", "kind", "kubectl", "helm"), 1, "e2e", "no Docker engine"),
    (("docker", "kind", "kubectl", "helm"), 0, "", "opt-in"),
    (("docker", "kind", "kubectl", "helm"), 0, "not e2e", "opt-in"),
    (("docker", "kind", "kubectl", "helm"), 0, "e2e", None),
])
def test_skip_gate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tools: tuple[str, ...],
                   docker_rc: int, markexpr: str, expect: str | None) -> None:
    _fake_tools(tmp_path / "bin", docker_rc, tools)
    monkeypatch.setenv("PATH", str(tmp_path / "bin") + os.pathsep + "/usr/bin:/bin")
    monkeypatch.delenv("TRAFFICDL_E2E", raising=False)
    # /usr/bin may hold real tools: only the fake folder decides what is installed.
    monkeypatch.setattr("shutil.which", _which_only(tmp_path / "bin"))
    reason = skip_reason(markexpr)
    if expect is None:
        assert reason is None
    else:
        assert reason is not None and expect in reason


def _which_only(folder: Path):  # type: ignore[no-untyped-def]
    def which(name: str, *_: object, **__: object) -> str | None:
        path = folder / name
        return str(path) if path.exists() else None
    return which


def test_parse_metrics_reads_real_exposition() -> None:
    registry = CollectorRegistry()
    commits = Counter("trafficdl_master_commits_total", "c", registry=registry)
    cost = Gauge("trafficdl_master_cost", "c", ["currency"], registry=registry)
    commits.inc(3)
    cost.labels("EUR").set(1.5)
    values = parse_metrics(generate_latest(registry).decode())
    assert values["trafficdl_master_commits_total"] == 3
    assert values["trafficdl_master_cost"] == 1.5


def test_ci_runs_the_kind_suite_on_every_push() -> None:
    workflow = yaml.safe_load((REPO / ".github/workflows/e2e.yml").read_text())
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1: on == True
    assert "push" in triggers and not (triggers["push"] or {}).get("branches")
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    assert any("scripts/e2e-kind.sh" in (s.get("run") or "") for s in steps)
    for tool in ("KIND_VERSION", "HELM_VERSION"):
        assert re.fullmatch(r"v\d+\.\d+\.\d+", workflow["env"][tool]), f"{tool} not pinned"


def test_make_e2e_kind_runs_the_script() -> None:
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\ne2e-kind:", 1)[1].split("\n\n", 1)[0]
    assert "scripts/e2e-kind.sh" in recipe
