"""Each scenario in charts/trafficdl/ci renders and passes `helm lint --strict`.

Rendered and linted by the real Helm engine (helm-python-sdk), so template
errors, schema violations and lint warnings fail here as they would in
`helm install`. The kinds each scenario produces are asserted too, since a
scenario that silently renders nothing would pass lint, and every built-in
manifest must round-trip through the official Kubernetes client's models.
"""

from __future__ import annotations

import json

import helm_python
import pytest
from chart_support import CHART_DIR, KUBE_VERSION, NAMESPACE, render, scenario_values, scenarios
from kubernetes import client

EXPECTED_KINDS = {
    "default": {"Deployment", "ServiceAccount", "Service", "Role", "RoleBinding"},
    "cluster-wide": {"Deployment", "ServiceAccount", "Service", "ClusterRole",
                     "ClusterRoleBinding"},
    "multi-namespace": {"Deployment", "ServiceAccount", "Service", "Role", "RoleBinding"},
    "monitoring": {"Deployment", "ServiceAccount", "Service", "Role", "RoleBinding",
                   "ServiceMonitor", "PodMonitor", "ConfigMap"},
    "existing-serviceaccount": {"Deployment", "Service"},
    "kind-e2e": {"Deployment", "ServiceAccount", "Service", "Role", "RoleBinding"},
}


def test_every_scenario_is_covered() -> None:
    assert set(scenarios()) == set(EXPECTED_KINDS)


@pytest.mark.parametrize("scenario", scenarios())
def test_scenario_lints_strict(scenario: str) -> None:
    report = helm_python.lint(CHART_DIR, scenario_values(scenario), strict=True,
                              namespace=NAMESPACE, kube_version=KUBE_VERSION)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["total_charts_linted"] == 1
    assert not problems and not report["errors"], problems or report["errors"]


@pytest.mark.parametrize("scenario", scenarios())
def test_scenario_renders_the_expected_kinds(chart: helm_python.Chart, scenario: str) -> None:
    rendered = render(chart, scenario_values(scenario))
    assert rendered.kinds() == EXPECTED_KINDS[scenario]
    for doc in rendered.docs:
        assert doc["apiVersion"] and doc["metadata"]["name"]
        assert len(doc["metadata"]["name"]) <= 63
        if doc["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            assert doc["metadata"].get("namespace"), f"{doc['kind']} without a namespace"


def test_lint_fails_on_a_broken_value() -> None:
    # The strict lint above is only meaningful if it can fail through the same call.
    report = helm_python.lint(CHART_DIR, {"operator": {"logLevel": "chatty"}}, strict=True,
                              namespace=NAMESPACE, kube_version=KUBE_VERSION)
    assert report["errors"]


@pytest.mark.parametrize("scenario", scenarios())
def test_manifests_fit_the_kubernetes_api_models(chart: helm_python.Chart, scenario: str) -> None:
    # The official client's models know every field of the built-in kinds: a manifest
    # that does not round-trip has a misspelled or misplaced field the API would drop.
    api = client.ApiClient()
    for doc in render(chart, scenario_values(scenario)).docs:
        group_version = doc["apiVersion"].split("/")
        if doc["kind"] in ("ServiceMonitor", "PodMonitor"):
            continue  # Prometheus Operator CRDs: not in the client
        assert group_version[-1] == "v1", doc["apiVersion"]
        model = api.deserialize(json.dumps(doc), f"V1{doc['kind']}", "application/json")
        assert api.sanitize_for_serialization(model) == doc, doc["kind"]
