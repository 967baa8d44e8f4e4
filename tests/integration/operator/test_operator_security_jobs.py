"""The real operator against kmock: the job's TLS Secret, a user's CA, the insecure opt-out and
refused inputs, each decided before any pod exists (fast; the real control plane repeats the
end-to-end part in tests/integration/k8s/test_k8s_security.py)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography import x509
from operator_kmock import SECRETS, eventually

from trafficdl.rpc.certs import Authority
from trafficdl.rpc.v1 import parameter_server_pb2 as pb

pytestmark = pytest.mark.asyncio

SPEC: dict[str, Any] = {
    "train": {"model": "lstm", "epochs": 3},
    "data": {"volume": {"persistentVolumeClaim": {"claimName": "data"}}, "datasetPath": "ds"},
    "scale": {"workers": 1},
}


def _data(cluster: Any, name: str) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in cluster.live(SECRETS)[name]["data"].items()}


async def test_default_job_gets_its_own_ca_and_mtls_status(cluster, operator, master):
    master.response = pb.StatusResponse(phase=pb.RUN_PHASE_RUNNING, epoch=0.5, epochs=3)
    await cluster.create_job("j", SPEC)
    await eventually(lambda: "j-tls" in cluster.live(SECRETS), what="the TLS Secret")
    secret = cluster.live(SECRETS)["j-tls"]
    assert secret["metadata"]["ownerReferences"][0]["name"] == "j"
    await eventually(lambda: {"j-master", "j-worker-0"} <= set(cluster.pods()), what="pods")
    await cluster.run_pods("j-master", "j-worker-0")
    # The stand-in master requires the job's client certificates: status flows only over mTLS.
    await eventually(lambda: cluster.status("j").get("epoch") == 0.5, what="epoch over mTLS")
    assert cluster.status("j")["security"] == "mTLS"
    data = _data(cluster, "j-tls")
    master_cert = x509.load_pem_x509_certificate(data["master.crt"])
    ca = x509.load_pem_x509_certificate(data["ca.crt"])
    assert master_cert.issuer == ca.subject and "j" in ca.subject.rfc4514_string()
    fp = cluster.pods()["j-master"]["metadata"]["annotations"]["trafficdl.io/tls-ca"]
    assert fp and all(p["metadata"]["annotations"]["trafficdl.io/tls-ca"] == fp
                      for p in cluster.pods().values())


async def test_users_ca_signs_the_job_and_a_missing_one_fails_it(cluster, operator, master):
    ca = Authority.create("team CA")
    await cluster.k.request("POST", "/api/v1/namespaces/default/secrets", json={
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "team-ca"},
        "data": {"tls.crt": base64.b64encode(ca.cert_pem).decode(),
                 "tls.key": base64.b64encode(ca.issued.key_pem).decode()}})
    await cluster.create_job("byo", {**SPEC, "security": {"caSecretName": "team-ca"}})
    await eventually(lambda: "byo-tls" in cluster.live(SECRETS), what="the TLS Secret")
    data = _data(cluster, "byo-tls")
    assert data["ca.crt"] == ca.cert_pem
    assert x509.load_pem_x509_certificate(data["worker.crt"]).issuer == ca.cert.subject

    await cluster.create_job("nobody", {**SPEC, "security": {"caSecretName": "missing"}})
    await eventually(lambda: cluster.status("nobody").get("phase") == "Failed", what="Failed")
    cond = cluster.condition("nobody", "Failed")
    assert cond["reason"] == "InvalidSpec" and "'missing' not found" in cond["message"]
    assert not [p for p in cluster.pods() if p.startswith("nobody-")]


async def test_insecure_opt_out_is_explicit_and_visible(cluster, operator, master):
    await cluster.create_job("plain", {**SPEC, "security": {"insecure": True}})
    await eventually(lambda: "plain-master" in cluster.pods(), what="pods")
    await eventually(lambda: cluster.status("plain").get("security") == "insecure",
                     what="status.security")  # the status patch follows the pods
    assert "plain-tls" not in cluster.live(SECRETS)
    env = {e["name"]: e.get("value") for e in
           cluster.pods()["plain-master"]["spec"]["containers"][0]["env"]}
    assert env["TRAFFICDL_ALLOW_PLAINTEXT"] == "1"
    await eventually(lambda: "Insecure" in cluster.event_reasons(), what="a Warning event")


@pytest.mark.parametrize(("data", "expected"), [
    ({"volume": {"hostPath": {"path": "/"}}, "datasetPath": "ds"}, "allowHostPath"),
    ({"volume": {"emptyDir": {}}, "datasetPath": "/etc/shadow"}, "not absolute"),
    ({"volume": {"emptyDir": {}}, "datasetPath": "ds", "outputPath": "../up"}, "'..'"),
])
async def test_refused_inputs_fail_before_any_child(cluster, operator, master, data, expected):
    await cluster.create_job("bad", {**SPEC, "data": data})
    await eventually(lambda: cluster.status("bad").get("phase") == "Failed", what="Failed")
    cond = cluster.condition("bad", "Failed")
    assert cond["reason"] == "InvalidSpec" and expected in cond["message"]
    await eventually(lambda: "InvalidSpec" in cluster.event_reasons(), what="Warning event")
    assert not cluster.pods() and not cluster.live(SECRETS)
