"""Test support for the chart checks: render with the real Helm engine, index manifests.

helm-python-sdk embeds Helm's Go engine, so what is rendered here is what
`helm template`/`helm install` would produce (minus cluster lookups).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
import yaml

REPO = Path(__file__).resolve().parents[3]
CHART_DIR = REPO / "charts" / "trafficdl"
CI_DIR = CHART_DIR / "ci"
RELEASE = "trafficdl"
NAMESPACE = "trafficdl-system"
KUBE_VERSION = "v1.30.0"


def scenario_values(name: str) -> dict[str, Any]:
    return yaml.safe_load((CI_DIR / f"{name}-values.yaml").read_text()) or {}


def scenarios() -> list[str]:
    return sorted(p.name.removesuffix("-values.yaml") for p in CI_DIR.glob("*-values.yaml"))


@dataclass
class Rendered:
    """The manifests of one render, plus the raw text per template (comments, NOTES)."""

    docs: list[dict[str, Any]]
    text: dict[str, str]

    def kinds(self) -> set[str]:
        return {d["kind"] for d in self.docs}

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def one(self, kind: str) -> dict[str, Any]:
        found = self.all(kind)
        assert len(found) == 1, f"expected one {kind}, got {len(found)}"
        return found[0]

    def template(self, suffix: str) -> str:
        return next(t for name, t in self.text.items() if name.endswith(suffix))

    def operator_container(self) -> dict[str, Any]:
        pod = self.one("Deployment")["spec"]["template"]["spec"]
        return next(c for c in pod["containers"] if c["name"] == "operator")


def render(chart: helm_python.Chart, values: dict[str, Any] | None = None,
           namespace: str = NAMESPACE) -> Rendered:
    chart.validate_schema(values or {})
    text = chart.render(values or {}, name=RELEASE, namespace=namespace)
    docs = [d for name, t in text.items() if name.endswith(".yaml")
            for d in yaml.safe_load_all(t) if d]
    return Rendered(docs=docs, text=text)
