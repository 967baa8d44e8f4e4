"""ServiceMonitor, PodMonitor and the Grafana dashboard point at things that exist.

The monitors must select the pods the operator really labels and the port
names its contract declares; every series the dashboard queries must be one a
component defines in its metrics module (otherwise the panel stays empty
forever, which no render or lint would notice).
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import helm_python
import yaml
from chart_support import NAMESPACE, REPO, render, scenario_values
from support.tools import skip_needing
from trafficdl_operator import contract

METRIC_MODULES = {
    "master": REPO / "master/trafficdl_master/metrics.py",
    "worker": REPO / "worker/trafficdl_worker/metrics.py",
    "operator": REPO / "operator/trafficdl_operator/metrics.py",
}
TOPICS = {  # the figures the dashboard must show, by a word of the title
    "training time": "Training time", "WTPE": "WTPE", "cost": "Cost",
    "F-measure": "F-measure", "commits/s": "Commits per second", "workers": "Workers",
}


def defined_metrics() -> dict[str, str]:
    """Series name -> kind, from the Counter/Gauge/Histogram/Summary constants."""
    found: dict[str, str] = {}
    for path in METRIC_MODULES.values():
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("Counter", "Gauge", "Histogram", "Summary")
                    and node.args and isinstance(node.args[0], ast.Constant)):
                found[node.args[0].value] = node.func.id
    return found


def series_exists(series: str, defined: dict[str, str]) -> bool:
    if series in defined:
        return True
    # prometheus_client appends _total to counters and _bucket/_sum/_count to histograms.
    for base, kind in defined.items():
        if kind == "Counter" and series == base.removesuffix("_total") + "_total":
            return True
        if kind in ("Histogram", "Summary") and series in {f"{base}_bucket", f"{base}_sum",
                                                           f"{base}_count"}:
            return True
    return False


def _monitoring(chart: helm_python.Chart) -> Any:
    return render(chart, scenario_values("monitoring"))


def test_service_monitor_scrapes_the_operator_service(chart: helm_python.Chart) -> None:
    rendered = _monitoring(chart)
    monitor = rendered.one("ServiceMonitor")
    service = rendered.one("Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= \
        service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    port_names = {p["name"] for p in service["spec"]["ports"]}
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    assert "metrics" in port_names
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_pod_monitor_selects_master_and_worker_pods_by_the_contract_labels(
        chart: helm_python.Chart) -> None:
    monitor = _monitoring(chart).one("PodMonitor")
    expr = monitor["spec"]["selector"]["matchExpressions"]
    assert expr == [{"key": contract.LABEL_ROLE, "operator": "In",
                     "values": [contract.ROLE_MASTER, contract.ROLE_WORKER]}]
    endpoint = monitor["spec"]["podMetricsEndpoints"][0]
    assert endpoint["port"] == contract.METRICS_PORT_NAME
    # The relabeling reads the job-name label through Prometheus' sanitised meta label.
    job_meta = "__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_",
                                                       contract.LABEL_JOB)
    assert [job_meta] in [r["sourceLabels"] for r in endpoint["relabelings"]]
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}


def test_pod_monitor_follows_the_watch_scope(chart: helm_python.Chart) -> None:
    values = scenario_values("monitoring") | {"operator": {"watch": {
        "allNamespaces": True, "namespaces": []}}}
    assert render(chart, values).one("PodMonitor")["spec"]["namespaceSelector"] == {"any": True}
    values["operator"]["watch"] = {"allNamespaces": False, "namespaces": ["a", "b"]}
    selector = render(chart, values).one("PodMonitor")["spec"]["namespaceSelector"]
    assert selector == {"matchNames": ["a", "b"]}


def test_dashboard_config_map_is_labelled_for_the_grafana_sidecar(
        chart: helm_python.Chart) -> None:
    config_map = _monitoring(chart).one("ConfigMap")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["namespace"] == "monitoring"
    dashboard = json.loads(config_map["data"]["trafficdl.json"])
    assert dashboard["uid"] == "trafficdl-training"


def _dashboard(chart: helm_python.Chart) -> dict[str, Any]:
    return json.loads(_monitoring(chart).one("ConfigMap")["data"]["trafficdl.json"])


def test_dashboard_covers_the_paper_figures(chart: helm_python.Chart) -> None:
    titles = [p["title"] for p in _dashboard(chart)["panels"]]
    for topic, word in TOPICS.items():
        assert any(word in t for t in titles), f"no panel for {topic}"
    for panel in _dashboard(chart)["panels"]:
        assert panel["targets"], panel["title"]


def test_every_queried_series_is_defined_by_a_component(chart: helm_python.Chart) -> None:
    defined = defined_metrics()
    assert defined, "no metrics found in the components' metrics modules"
    queried = {name for panel in _dashboard(chart)["panels"] for t in panel["targets"]
               for name in re.findall(r"\btrafficdl_[a-z0-9_]+", t["expr"])}
    queried |= set(re.findall(r"\btrafficdl_[a-z0-9_]+", json.dumps(
        _dashboard(chart)["templating"])))
    queried -= {"trafficdl_job", "trafficdl_role"}  # target labels added by the PodMonitor
    missing = sorted(s for s in queried if not series_exists(s, defined))
    assert not missing, f"the dashboard queries series no component exports: {missing}"


def test_dashboard_off_by_default(chart: helm_python.Chart) -> None:
    assert not render(chart).kinds() & {"ConfigMap", "ServiceMonitor", "PodMonitor"}


def test_dashboard_queries_are_valid_promql(chart: helm_python.Chart, tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        skip_needing("promtool", "promtool not installed (make system-deps installs prometheus)")
    exprs = [t["expr"] for panel in _dashboard(chart)["panels"] for t in panel["targets"]]
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query{i}", "expr": e.replace("$job", ".*")}
        for i, e in enumerate(exprs)]}]}
    good = tmp_path / "rules.yaml"
    good.write_text(yaml.safe_dump(rules))
    proc = subprocess.run([promtool, "check", "rules", str(good)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The same check rejects a broken query, so a pass above means something.
    rules["groups"][0]["rules"][0]["expr"] = "sum by (trafficdl_job (broken"
    good.write_text(yaml.safe_dump(rules))
    assert subprocess.run([promtool, "check", "rules", str(good)], capture_output=True,
                          timeout=60, check=False).returncode != 0
