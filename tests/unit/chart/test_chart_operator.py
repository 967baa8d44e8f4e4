"""The rendered operator Deployment: hardening, images, settings and watch scope.

The values a user sets must arrive where the operator reads them: the env
vars are fed back through the operator's own Settings.from_env, and the
command is compared with Dockerfile.operator's entry point, so a rename on
either side fails here rather than in a cluster.
"""

from __future__ import annotations

import json
import re
from typing import Any

import helm_python
import pytest
import yaml
from chart_support import NAMESPACE, REPO, render, scenario_values, scenarios
from trafficdl_operator.settings import ENV_PREFIX, Settings

DIGEST = "sha256:" + "ab" * 32
SETTINGS_SOURCE = (REPO / "operator/trafficdl_operator/settings.py").read_text()


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


@pytest.mark.parametrize("scenario", scenarios())
def test_operator_deployment_is_hardened(chart: helm_python.Chart, scenario: str) -> None:
    rendered = render(chart, scenario_values(scenario))
    deploy = rendered.one("Deployment")
    assert deploy["spec"]["replicas"] == 1
    assert deploy["spec"]["strategy"] == {"type": "Recreate"}
    pod = deploy["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = rendered.operator_container()
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind])
    # The only writable path is a volume, and it is where the image points HOME/TMPDIR.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts == {"/tmp": "tmp"}
    assert {v["name"] for v in pod["volumes"]} == {"tmp"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == int(_env(container)[ENV_PREFIX + "METRICS_PORT"])
    probe = container["livenessProbe"]["httpGet"]
    assert probe["port"] == "health"
    # The endpoints bind the pod's own IP (downward API), which the kubelet probes.
    assert f"--liveness=http://$(POD_IP):{ports['health']}{probe['path']}" in container["args"]
    pod_ip = next(e for e in container["env"] if e["name"] == "POD_IP")
    assert pod_ip["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert _env(container)[ENV_PREFIX + "METRICS_ADDR"] == "$(POD_IP)"


def test_command_is_the_image_entry_point(chart: helm_python.Chart) -> None:
    dockerfile = (REPO / "Dockerfile.operator").read_text()
    entry = next(line for line in dockerfile.splitlines() if line.startswith("ENTRYPOINT"))
    container = render(chart).operator_container()
    assert container["command"] == json.loads(entry.removeprefix("ENTRYPOINT"))
    assert "--standalone" in container["args"]


def test_values_reach_the_operator_settings(chart: helm_python.Chart) -> None:
    values = {"operator": {
        "masterImage": {"repository": "registry.example/tdl/master", "tag": "1.2.3"},
        "workerImage": {"repository": "registry.example/tdl/worker", "tag": "1.2.3-cu128",
                        "digest": DIGEST},
        "reconcileIntervalSeconds": 4.5, "statusTimeoutSeconds": 1.5, "podGraceSeconds": 7,
        "masterLingerSeconds": 12.5, "metrics": {"port": 9300}, "allowHostPath": True,
        "certLifetimeHours": 48, "certRenewBeforeHours": 6,
    }}
    container = render(chart, values).operator_container()
    settings = Settings.from_env(_env(container))
    assert settings.master_image == "registry.example/tdl/master:1.2.3"
    assert settings.worker_image == f"registry.example/tdl/worker:1.2.3-cu128@{DIGEST}"
    assert settings.reconcile_interval == 4.5
    assert settings.status_timeout == 1.5
    assert settings.pod_grace_seconds == 7
    assert settings.master_linger_seconds == 12.5
    assert settings.metrics_port == 9300
    assert settings.allow_host_path is True and not Settings.from_env(
        _env(render(chart, {}).operator_container())).allow_host_path  # off by default
    assert (settings.cert_lifetime_hours, settings.cert_renew_before_hours) == (48, 6)
    # Every TRAFFICDL_OPERATOR_* the chart sets is one the operator reads, and each
    # setting an administrator tunes is set (the override is for tests only).
    read = set(re.findall(r'get\("([A-Z_]+)"', SETTINGS_SOURCE)) - {"MASTER_ADDR_OVERRIDE"}
    set_by_chart = {k.removeprefix(ENV_PREFIX) for k in _env(container)
                    if k.startswith(ENV_PREFIX)}
    assert read and set_by_chart == read
    assert Settings.from_env({}) != settings  # the defaults would not have produced this


def test_default_images_are_those_make_images_builds() -> None:
    built = set(re.findall(r"-t (trafficdl-[a-z]+:[a-z0-9.]+)", (REPO / "Makefile").read_text()))
    container = render(helm_python.Chart.load(str(REPO / "charts" / "trafficdl"))
                       ).operator_container()
    env = _env(container)
    assert {container["image"], env[ENV_PREFIX + "MASTER_IMAGE"],
            env[ENV_PREFIX + "WORKER_IMAGE"]} == built


def test_an_empty_tag_means_the_app_version(chart: helm_python.Chart) -> None:
    values = {"operator": {"image": {"repository": "r.example/op", "tag": ""}}}
    container = render(chart, values).operator_container()
    assert container["image"] == f"r.example/op:{chart.metadata['appVersion']}"


def test_operator_image_digest_pins(chart: helm_python.Chart) -> None:
    values = {"operator": {"image": {"repository": "r.example/op", "tag": "x",
                                     "digest": DIGEST}}}
    assert render(chart, values).operator_container()["image"] == f"r.example/op:x@{DIGEST}"


def test_kind_scenario_uses_local_images_never_pulled(chart: helm_python.Chart) -> None:
    container = render(chart, scenario_values("kind-e2e")).operator_container()
    assert container["image"] == "trafficdl-operator:dev"
    assert container["imagePullPolicy"] == "Never"
    env = _env(container)
    assert env[ENV_PREFIX + "MASTER_IMAGE"] == "trafficdl-master:dev"
    assert env[ENV_PREFIX + "WORKER_IMAGE"] == "trafficdl-worker:dev"


@pytest.mark.parametrize(("scenario", "expected"), [
    ("default", [f"--namespace={NAMESPACE}"]),
    ("multi-namespace", ["--namespace=team-a", "--namespace=team-b"]),
    ("cluster-wide", ["--all-namespaces"]),
])
def test_watch_scope_arguments(chart: helm_python.Chart, scenario: str,
                               expected: list[str]) -> None:
    args = render(chart, scenario_values(scenario)).operator_container()["args"]
    scope = [a for a in args if a.startswith(("--namespace", "--all-namespaces"))]
    assert scope == expected


@pytest.mark.parametrize(("level", "flag"), [("info", None), ("verbose", "--verbose"),
                                             ("debug", "--debug"), ("quiet", "--quiet")])
def test_log_level_maps_to_a_kopf_flag(chart: helm_python.Chart, level: str,
                                       flag: str | None) -> None:
    args = render(chart, {"operator": {"logLevel": level}}).operator_container()["args"]
    levels = [a for a in args if a in ("--verbose", "--debug", "--quiet")]
    assert levels == ([flag] if flag else [])


def test_existing_service_account_is_used_as_is(chart: helm_python.Chart) -> None:
    rendered = render(chart, scenario_values("existing-serviceaccount"))
    pod = rendered.one("Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "trafficdl-operator-managed"
    with pytest.raises(helm_python.HelmError, match=r"serviceAccount\.name"):
        render(chart, {"serviceAccount": {"create": False}})


def test_metrics_service_targets_the_operator_pod(chart: helm_python.Chart) -> None:
    rendered = render(chart)
    service = rendered.one("Service")
    pod_labels = rendered.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["metrics"]


def test_notes_tell_what_to_do_next(chart: helm_python.Chart) -> None:
    notes = render(chart).template("NOTES.txt")
    assert f"kubectl -n {NAMESPACE} rollout status deployment/trafficdl-operator" in notes
    assert "kubectl apply --server-side -f charts/trafficdl/crds/" in notes
    assert "kubectl get traffictrainingjobs" in notes
    wide = render(chart, scenario_values("cluster-wide")).template("NOTES.txt")
    assert "every namespace" in wide and "every namespace" not in notes


def test_every_name_stays_a_dns_label_for_a_long_release(chart: helm_python.Chart) -> None:
    # fullname is cut at 63; the "-operator" and "-metrics" suffixes must not push past it.
    long = "a-release-name-that-is-long-enough-to-push-every-suffix-over"
    text = chart.render({}, name=long, namespace=NAMESPACE)
    names = [d["metadata"]["name"] for f, t in text.items() if f.endswith(".yaml")
             for d in yaml.safe_load_all(t) if d and "metadata" in d]
    assert any(n.endswith("-metrics") for n in names)
    for n in names:
        assert len(n) <= 63 and re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", n), n
