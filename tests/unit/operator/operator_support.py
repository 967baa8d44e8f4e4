"""Helpers for the operator's unit tests: the CRD from its one source, a minimal spec.

A module of its own (not conftest) because several test folders have a conftest.py and
`from conftest import ...` would pick whichever was imported first.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[3]
CRD_PATH = REPO / "charts/trafficdl/crds/traffictrainingjobs.trafficdl.io.yaml"
EXAMPLES = REPO / "examples"


def openapi_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD_PATH.read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema as `kubectl apply --validate=strict` applies it: unknown fields are errors."""
    out = copy.deepcopy(schema)

    def walk(node: dict[str, Any]) -> None:
        if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
            node.setdefault("additionalProperties", False)
        for child in (node.get("properties") or {}).values():
            walk(child)
        if isinstance(node.get("items"), dict):
            walk(node["items"])

    walk(out)
    return out


MINIMAL: dict[str, Any] = {
    "data": {"volume": {"persistentVolumeClaim": {"claimName": "data"}},
             "datasetPath": "datasets/fbfbm"},
}
