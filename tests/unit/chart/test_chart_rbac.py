"""RBAC grants exactly the API calls the operator makes, in the right scope.

The required permissions are derived from the operator's code, not copied:
every Kubernetes client call in trafficdl_operator (create_namespaced_pod ->
pods/create, ...) plus what kopf does for the handlers registered on the
TrafficTrainingJob (list/watch/patch of the jobs, status patches through the
subresource the CRD declares, core Events for kopf.event). The rendered Role
and ClusterRole must equal that set: a missing verb breaks the operator in a
cluster, an extra one is a privilege nobody uses.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml
from chart_support import NAMESPACE, REPO, render, scenario_values
from trafficdl_operator import contract

OPERATOR_PKG = REPO / "operator" / "trafficdl_operator"
CRD_FILE = REPO / "charts/trafficdl/crds/traffictrainingjobs.trafficdl.io.yaml"
CLIENT_CALL = re.compile(
    r"(create|read|list|patch|replace|delete|delete_collection)_namespaced_(\w+?)(_status)?")
CLIENT_VERB = {"create": "create", "read": "get", "list": "list", "patch": "patch",
               "replace": "update", "delete": "delete", "delete_collection": "deletecollection"}
CORE_PLURALS = {"pod": "pods", "service": "services", "secret": "secrets",
                "config_map": "configmaps", "event": "events", "endpoints": "endpoints",
                "persistent_volume_claim": "persistentvolumeclaims"}
Permission = tuple[str, str, str]  # (apiGroup, resource, verb)


def _calls(tree: ast.AST) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)]


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def _crd_has_status_subresource() -> bool:
    crd = yaml.safe_load(CRD_FILE.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == contract.VERSION)
    return "status" in (version.get("subresources") or {})


def required_permissions() -> set[Permission]:
    job = (contract.GROUP, contract.PLURAL)
    needed: set[Permission] = set()
    for path in sorted(OPERATOR_PKG.glob("*.py")):
        tree = ast.parse(path.read_text())
        # Attribute references, not only calls: methods are also passed around as values.
        for node in ast.walk(tree):
            match = CLIENT_CALL.fullmatch(node.attr) if isinstance(node, ast.Attribute) else None
            if match:
                verb = CLIENT_VERB[match[1]]
                suffix = "/status" if match[3] else ""
                if match[2] == "custom_object":
                    needed.add((job[0], job[1] + suffix, verb))
                else:
                    assert match[2] in CORE_PLURALS, f"{path.name}: unmapped call {match[0]}"
                    needed.add(("", CORE_PLURALS[match[2]] + suffix, verb))
        for call in _calls(tree):
            func = call.func
            dotted = _dotted(func)
            if dotted.startswith(("kopf.on.", "kopf.timer", "kopf.daemon", "kopf.index")):
                args = [_dotted(a) for a in call.args]
                if args and args[-1].endswith("PLURAL"):
                    # kopf lists+watches the resource and patches its bookkeeping onto it.
                    needed |= {(*job, "list"), (*job, "watch"), (*job, "patch")}
                    if _crd_has_status_subresource():
                        needed.add((job[0], job[1] + "/status", "patch"))
            if dotted in ("kopf.event", "kopf.info", "kopf.warn", "kopf.exception"):
                needed.add(("", "events", "create"))
            if dotted == "kopf.adopt":
                # blockOwnerDeletion on the children: OwnerReferencesPermissionEnforcement
                # demands update on the owner's finalizers (proven by tests/integration/k8s).
                needed.add((job[0], job[1] + "/finalizers", "update"))
    return needed


def granted(rules: list[dict[str, Any]]) -> set[Permission]:
    return {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]
            for v in rule["verbs"]}


def test_the_derivation_sees_the_operator_calls() -> None:
    # Guards the derivation itself: these calls are in trafficdl_operator today.
    needed = required_permissions()
    assert {("", "pods", "create"), ("", "pods", "list"), ("", "events", "create"),
            (contract.GROUP, contract.PLURAL, "watch")} <= needed


def test_namespaced_role_grants_exactly_what_the_operator_calls(
        chart: helm_python.Chart) -> None:
    role = render(chart).one("Role")
    assert role["metadata"]["namespace"] == NAMESPACE
    got, needed = granted(role["rules"]), required_permissions()
    assert got == needed, f"missing {sorted(needed - got)}, unused {sorted(got - needed)}"
    assert not any("*" in p for perm in got for p in perm)


def test_cluster_wide_uses_a_cluster_role_with_the_same_rules(chart: helm_python.Chart) -> None:
    wide = render(chart, scenario_values("cluster-wide"))
    assert not wide.all("Role") and not wide.all("RoleBinding")
    cluster_role = wide.one("ClusterRole")
    assert granted(cluster_role["rules"]) == required_permissions()
    binding = wide.one("ClusterRoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io",
                                  "kind": "ClusterRole",
                                  "name": cluster_role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "trafficdl-operator",
                                    "namespace": NAMESPACE}]


def test_one_role_per_watched_namespace_bound_to_the_release_account(
        chart: helm_python.Chart) -> None:
    rendered = render(chart, scenario_values("multi-namespace"))
    assert not rendered.all("ClusterRole")
    roles = {r["metadata"]["namespace"]: r for r in rendered.all("Role")}
    bindings = {b["metadata"]["namespace"]: b for b in rendered.all("RoleBinding")}
    assert set(roles) == set(bindings) == {"team-a", "team-b"}
    for ns, binding in bindings.items():
        assert binding["roleRef"]["name"] == roles[ns]["metadata"]["name"]
        assert binding["subjects"][0]["namespace"] == NAMESPACE
        assert granted(roles[ns]["rules"]) == required_permissions()


def test_rbac_create_false_renders_no_rbac(chart: helm_python.Chart) -> None:
    rendered = render(chart, {"rbac": {"create": False}})
    assert not rendered.kinds() & {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
    assert "ServiceAccount" in rendered.kinds()


def test_every_rule_says_framework_or_application(chart: helm_python.Chart) -> None:
    text = render(chart).template("rbac/role.yaml")
    lines = text.splitlines()
    rule_starts = [i for i, line in enumerate(lines) if line.strip().startswith("- apiGroups:")]
    assert rule_starts
    for i in rule_starts:
        comment = lines[i - 1].strip()
        assert comment.startswith(("# framework:", "# application:")), lines[i]


@pytest.mark.parametrize("path", sorted(OPERATOR_PKG.glob("*.py")), ids=lambda p: p.name)
def test_operator_never_uses_the_dynamic_client(path: Path) -> None:
    # The derivation above reads typed client calls; a dynamic/raw client would escape it.
    source = path.read_text()
    assert "DynamicClient" not in source and "call_api(" not in source


def documented_permissions() -> set[Permission]:
    """The verbs docs/operator.md lists under "Kubernetes API calls (for RBAC)"."""
    text = (REPO / "docs/operator.md").read_text()
    section = text.split("Kubernetes API calls (for RBAC)", 1)[1].split("\n#", 1)[0]
    found: set[Permission] = set()
    pattern = r"`([a-z]+(?:/[a-z]+)?)`:\s+\*\*([a-z,\s]+)\*\*"
    for resource, verbs in re.findall(pattern, section):
        group = contract.GROUP if resource.startswith(contract.PLURAL) else ""
        found |= {(group, resource, v.strip()) for v in verbs.split(",")}
    return found


def test_chart_grants_what_docs_operator_md_documents(chart: helm_python.Chart) -> None:
    documented = documented_permissions()
    assert documented, "no RBAC section found in docs/operator.md"
    assert granted(render(chart).one("Role")["rules"]) == documented
