"""values.yaml is fully documented and typed; the schema rejects what would break a release.

Helm validates values against values.schema.json on install/upgrade/lint, so
each rejection here is a mistake a user gets told about before anything
reaches the cluster. Documentation is checked line by line: every key in
values.yaml carries a comment, and every key has a typed, described schema.
"""

from __future__ import annotations

import json
from typing import Any

import helm_python
import pytest
import yaml
from chart_support import CHART_DIR, scenario_values, scenarios

SCHEMA = json.loads((CHART_DIR / "values.schema.json").read_text())
VALUES_TEXT = (CHART_DIR / "values.yaml").read_text()


def _leaf_paths(node: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if isinstance(node, dict) and node:
        return [p for k, v in node.items() for p in _leaf_paths(v, (*prefix, k))]
    return [prefix]


def _schema_at(path: tuple[str, ...]) -> dict[str, Any] | None:
    node: dict[str, Any] | None = SCHEMA
    for key in path:
        props = (node or {}).get("properties") or {}
        if key not in props:
            return None  # inside a free-form map: the map is the documented unit
        node = props[key]
    return node


@pytest.mark.parametrize("scenario", scenarios())
def test_scenarios_satisfy_the_schema(chart: helm_python.Chart, scenario: str) -> None:
    chart.validate_schema(scenario_values(scenario))


@pytest.mark.parametrize(("values", "where"), [
    ({"operator": {"image": {"pullPolicy": "Sometimes"}}}, "pullPolicy"),
    ({"operator": {"image": {"digest": "sha256:nothex"}}}, "digest"),
    ({"operator": {"image": {"repository": ""}}}, "repository"),
    ({"operator": {"masterImage": {"repository": "UPPER/case"}}}, "repository"),
    ({"operator": {"watch": {"allNamespaces": "yes"}}}, "allNamespaces"),
    ({"operator": {"watch": {"namespaces": ["Not_A_Namespace"]}}}, "namespaces"),
    ({"operator": {"watch": {"namespaces": ["a", "a"]}}}, "namespaces"),
    ({"operator": {"metrics": {"port": 70000}}}, "port"),
    ({"operator": {"health": {"port": 0}}}, "port"),
    ({"operator": {"reconcileIntervalSeconds": 0}}, "reconcileIntervalSeconds"),
    ({"operator": {"podGraceSeconds": -1}}, "podGraceSeconds"),
    ({"operator": {"logLevel": "chatty"}}, "logLevel"),
    ({"operator": {"resources": {"limits": {"memory": "lots"}}}}, "memory"),
    ({"operator": {"replicas": 2}}, "replicas"),  # one operator only: not a value
    ({"metrics": {"podMonitor": {"interval": "15 seconds"}}}, "interval"),
    ({"rbac": {"create": "true"}}, "create"),
    ({"serviceAccounts": {}}, "serviceAccounts"),
])
def test_schema_rejects(chart: helm_python.Chart, values: dict[str, Any], where: str) -> None:
    with pytest.raises(helm_python.HelmValuesError) as err:
        chart.validate_schema(values)
    assert where in str(err.value)


def test_schema_accepts_the_defaults_and_typical_overrides(chart: helm_python.Chart) -> None:
    chart.validate_schema({})
    chart.validate_schema({"operator": {
        "image": {"repository": "localhost:5000/trafficdl-operator", "tag": "v0.1.0-rc.1",
                  "digest": "sha256:" + "0" * 64},
        "resources": {"requests": {"cpu": "100m", "memory": "1Gi"}, "limits": {"cpu": 1}},
        "watch": {"allNamespaces": False, "namespaces": ["ml-team"]},
    }})


def test_every_value_is_typed_and_described_in_the_schema() -> None:
    values = yaml.safe_load(VALUES_TEXT)
    for path in _leaf_paths(values):
        node = _schema_at(path)
        # Free-form maps (podAnnotations, securityContext...) are typed as a whole.
        while node is None and len(path) > 1:
            path = path[:-1]
            node = _schema_at(path)
        assert node is not None, f"{'.'.join(path)} is not in values.schema.json"
        assert "type" in node, f"{'.'.join(path)} has no type"
        assert node.get("description"), f"{'.'.join(path)} has no description"


def test_every_value_in_values_yaml_is_commented() -> None:
    # A value is documented by the comment right above its key, or by the comment
    # above an enclosing key (a documented block such as resources or labels).
    lines = [line for line in VALUES_TEXT.splitlines() if line.strip()]
    stack: list[tuple[int, bool]] = []  # (indent, documented) of enclosing keys
    undocumented = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith(("#", "- ")) or ":" not in stripped:
            continue
        indent = len(line) - len(line.lstrip())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        documented = (i > 0 and lines[i - 1].strip().startswith("#")) or any(
            d for _, d in stack)
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        is_leaf = len(nxt) - len(nxt.lstrip()) <= indent or nxt.strip().startswith("- ")
        if is_leaf and not documented:
            undocumented.append(stripped)
        stack.append((indent, documented))
    assert not undocumented, f"values without a comment: {undocumented}"
