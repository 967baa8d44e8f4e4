"""Fixtures of the kind e2e suite: cluster, images, chart, dataset — each made once per session.

The order mirrors docs/deploy.md: create a kind cluster, build the three
images and load them into it, `helm install` the chart, then write a dataset
onto a PersistentVolumeClaim with a Job that runs `trafficdl synth` and
`trafficdl extract` from the worker image. Knobs (environment):
TRAFFICDL_E2E_CLUSTER (name, default trafficdl-e2e), TRAFFICDL_E2E_REUSE=1
(use that existing cluster), TRAFFICDL_E2E_KEEP=1 (do not delete it),
TRAFFICDL_E2E_SKIP_BUILD=1 (images already built by `make images`),
TRAFFICDL_E2E_ARTIFACTS (folder for cluster diagnostics when a test fails),
TRAFFICDL_E2E_REQUIRED=1 (a missing prerequisite is an error, not a skip).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import (
    CLUSTER,
    IMAGES,
    JOBS_NS,
    SYSTEM_NS,
    Kubectl,
    dataset_manifests,
    run,
    skip_reason,
)

HERE = Path(__file__).resolve().parent
_FAILED = pytest.StashKey[bool]()  # set when any e2e test fails: dump diagnostics


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ours = [item for item in items if HERE in Path(str(item.path)).resolve().parents
            and item.get_closest_marker("e2e")]
    if not ours:
        return
    reason = skip_reason(config.getoption("markexpr") or "")
    if reason and os.environ.get("TRAFFICDL_E2E_REQUIRED") == "1":
        # `make e2e-kind` and CI asked for the suite: a skip would be a silent pass.
        raise pytest.UsageError(f"TRAFFICDL_E2E_REQUIRED=1 but: {reason}")
    if reason:
        for item in ours:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    report = yield
    if report.failed:
        item.session.stash[_FAILED] = True
    return report


@pytest.fixture(scope="session")
def kubectl(tmp_path_factory: pytest.TempPathFactory,
            request: pytest.FixtureRequest) -> Iterator[Kubectl]:
    kubeconfig = tmp_path_factory.mktemp("kind") / "kubeconfig"
    reuse = os.environ.get("TRAFFICDL_E2E_REUSE") == "1"
    if not reuse:
        run("kind", "create", "cluster", "--name", CLUSTER, "--kubeconfig", str(kubeconfig),
            "--wait", "180s", timeout=600)
    else:
        kubeconfig.write_text(run("kind", "get", "kubeconfig", "--name", CLUSTER))
    kube = Kubectl(kubeconfig)
    yield kube
    if request.session.stash.get(_FAILED, False):
        _dump_diagnostics(kube)
    if not reuse and os.environ.get("TRAFFICDL_E2E_KEEP") != "1":
        run("kind", "delete", "cluster", "--name", CLUSTER, timeout=300, check=False)


def _dump_diagnostics(kube: Kubectl) -> None:
    folder = Path(os.environ.get("TRAFFICDL_E2E_ARTIFACTS",
                                 Path(tempfile.gettempdir()) / "trafficdl-e2e-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    dumps = {
        "resources.txt": ("get", "all,traffictrainingjobs,pvc,jobs,events", "-A", "-o", "wide"),
        "jobs.yaml": ("get", "traffictrainingjobs", "-A", "-o", "yaml"),
        "operator.log": ("logs", "-n", SYSTEM_NS, "deployment/trafficdl-operator", "--tail=2000"),
        "pods.txt": ("describe", "pods", "-n", JOBS_NS),
    }
    for name, args in dumps.items():
        (folder / name).write_text(kube(*args, check=False))


@pytest.fixture(scope="session")
def images(kubectl: Kubectl) -> dict[str, str]:
    """The three images, built from this checkout (as `make images`) and loaded into kind."""
    for name, tag in IMAGES.items():
        if os.environ.get("TRAFFICDL_E2E_SKIP_BUILD") != "1":
            run("docker", "build", "-f", f"Dockerfile.{name}", "-t", tag, ".", timeout=1800)
        run("kind", "load", "docker-image", tag, "--name", CLUSTER, timeout=600)
    return IMAGES


@pytest.fixture(scope="session")
def chart_release(kubectl: Kubectl, images: dict[str, str]) -> str:
    """`helm install` with the kind scenario, watching the jobs namespace (a namespaced Role)."""
    kubectl("create", "namespace", JOBS_NS, check=False)
    kubectl("create", "namespace", SYSTEM_NS, check=False)
    # The API server itself checks the operator's hardening: restricted Pod Security.
    kubectl("label", "--overwrite", "namespace", SYSTEM_NS,
            "pod-security.kubernetes.io/enforce=restricted")
    run("helm", "upgrade", "--install", "trafficdl", "charts/trafficdl",
        "--kubeconfig", str(kubectl.kubeconfig), "--namespace", SYSTEM_NS,
        "--values", "charts/trafficdl/ci/kind-e2e-values.yaml",
        "--set", f"operator.watch.namespaces[0]={JOBS_NS}",
        "--wait", "--timeout", "5m", timeout=400)
    return "trafficdl"


@pytest.fixture(scope="session")
def dataset(kubectl: Kubectl, chart_release: str) -> str:
    """A dataset on a PVC, written by `trafficdl synth` + `trafficdl extract` in a Job."""
    kubectl.apply(dataset_manifests())
    kubectl("wait", "-n", JOBS_NS, "--for=condition=complete", "job/dataset",
            "--timeout=600s", timeout=660)
    return "dataset"
