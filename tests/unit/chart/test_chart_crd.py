"""The chart ships the one CRD file the operator's tests load, and it matches the contract.

One source of truth: charts/trafficdl/crds/ holds the CRD, the operator's
integration tests read it from there (their support module's CRD_PATH) and
Helm installs it from there. A copy or a drifted group/version/kind fails here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import helm_python
import yaml
from chart_support import CHART_DIR, REPO
from trafficdl_operator import contract

OPERATOR_TEST_SUPPORT = REPO / "tests/integration/operator/operator_kmock.py"


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("operator_kmock_for_chart_test", path)
    assert spec and spec.loader, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_chart_crd_is_the_file_the_operator_tests_load(chart: helm_python.Chart) -> None:
    crd_path = Path(_load(OPERATOR_TEST_SUPPORT).CRD_PATH).resolve()
    assert crd_path.parent == (CHART_DIR / "crds").resolve()
    shipped = {Path(c["name"]).name: c["data"] for c in chart.crds}
    assert list(shipped) == [crd_path.name], "exactly one CRD, the operator's"
    assert shipped[crd_path.name] == crd_path.read_text()


def test_crd_matches_the_operator_contract(chart: helm_python.Chart) -> None:
    (crd_file,) = chart.crds
    crd = yaml.safe_load(crd_file["data"])
    spec = crd["spec"]
    assert crd["metadata"]["name"] == f"{contract.PLURAL}.{contract.GROUP}"
    assert spec["group"] == contract.GROUP
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == contract.KIND
    assert spec["names"]["plural"] == contract.PLURAL
    assert contract.SHORT_NAME in spec["names"]["shortNames"]
    storage = [v for v in spec["versions"] if v.get("storage")]
    assert [v["name"] for v in storage] == [contract.VERSION]
    assert "status" in storage[0].get("subresources", {}), "kopf patches status via /status"


def test_crds_are_not_templated(chart: helm_python.Chart) -> None:
    # Helm installs crds/ verbatim and never renders it: no template syntax may hide there.
    for crd in chart.crds:
        assert "{{" not in crd["data"], crd["name"]
    rendered = chart.render({}, name="x", namespace="y")
    assert not any("CustomResourceDefinition" in text for text in rendered.values())
